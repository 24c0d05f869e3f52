"""Ranking quality of predicted DockQ against true DockQ, as evaluated in the TopoQA paper."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

# CAPRI "acceptable" quality: a hit is an acceptable-or-better model.
ACCEPTABLE_DOCKQ = 0.23


@dataclass
class TargetScores:
    target: str
    models: int
    pearson: float
    spearman: float
    mse: float
    top1_loss: float  # best true DockQ minus the true DockQ of the top-ranked model
    top1_hit: bool  # an acceptable model ranked first
    top5_hit: bool  # an acceptable model among the five ranked highest
    has_acceptable: bool


def _correlation(kind: str, predicted: np.ndarray, true: np.ndarray) -> float:
    """NaN where undefined (fewer than two models, or a constant column)."""
    if len(predicted) < 2 or np.ptp(predicted) == 0 or np.ptp(true) == 0:
        return math.nan
    result = stats.pearsonr(predicted, true) if kind == "pearson" else stats.spearmanr(predicted, true)
    return float(result[0])


def ranking_order(models: list[str], predicted) -> list[int]:
    """Indices of `models`, highest prediction first, ties broken by model name (the order of ranking.csv)."""
    return sorted(range(len(models)), key=lambda i: (-predicted[i], models[i]))


def score_target(target: str, models: list[str], predicted: np.ndarray, true: np.ndarray) -> TargetScores:
    """Scores for one target's models; ties in prediction are broken by model name."""
    order = ranking_order(models, predicted)
    ranked_true = true[order]
    return TargetScores(
        target=target,
        models=len(models),
        pearson=_correlation("pearson", predicted, true),
        spearman=_correlation("spearman", predicted, true),
        mse=float(np.mean((predicted - true) ** 2)),
        top1_loss=float(true.max() - ranked_true[0]),
        top1_hit=bool(ranked_true[0] >= ACCEPTABLE_DOCKQ),
        top5_hit=bool((ranked_true[:5] >= ACCEPTABLE_DOCKQ).any()),
        has_acceptable=bool((true >= ACCEPTABLE_DOCKQ).any()),
    )


@dataclass
class Evaluation:
    models: int
    pearson: float
    spearman: float
    mse: float
    mean_top1_loss: float
    top1_hits: int
    top5_hits: int
    targets_with_acceptable: int
    targets: list[TargetScores]

    def summary_lines(self) -> list[str]:
        lines = [
            f"models evaluated: {self.models} in {len(self.targets)} target(s)",
            f"overall Pearson {self.pearson:.4f}  Spearman {self.spearman:.4f}  MSE {self.mse:.5f}",
            f"per-target mean top-1 DockQ loss {self.mean_top1_loss:.4f}",
            f"hit rate (acceptable model, DockQ >= {ACCEPTABLE_DOCKQ}): top-1 {self.top1_hits}/"
            f"{self.targets_with_acceptable}, top-5 {self.top5_hits}/{self.targets_with_acceptable}"
            " targets that have an acceptable model",
        ]
        if len(self.targets) > 1:
            pearsons = [t.pearson for t in self.targets if not math.isnan(t.pearson)]
            spearmans = [t.spearman for t in self.targets if not math.isnan(t.spearman)]
            if pearsons:
                lines.append(
                    f"per-target mean Pearson {np.mean(pearsons):.4f}  Spearman {np.mean(spearmans):.4f}"
                    f" ({len(pearsons)} targets with a defined correlation)"
                )
        return lines


def evaluate(models: list[str], targets: list[str], predicted: list[float], true: list[float]) -> Evaluation:
    """Overall and per-target scores; `targets` groups models (one group when all equal)."""
    predicted_array = np.asarray(predicted, dtype=np.float64)
    true_array = np.asarray(true, dtype=np.float64)
    per_target = []
    for target in sorted(set(targets)):
        index = [i for i, name in enumerate(targets) if name == target]
        per_target.append(
            score_target(target, [models[i] for i in index], predicted_array[index], true_array[index])
        )
    with_acceptable = [t for t in per_target if t.has_acceptable]
    return Evaluation(
        models=len(models),
        pearson=_correlation("pearson", predicted_array, true_array),
        spearman=_correlation("spearman", predicted_array, true_array),
        mse=float(np.mean((predicted_array - true_array) ** 2)),
        mean_top1_loss=float(np.mean([t.top1_loss for t in per_target])),
        top1_hits=sum(t.top1_hit for t in with_acceptable),
        top5_hits=sum(t.top5_hit for t in with_acceptable),
        targets_with_acceptable=len(with_acceptable),
        targets=per_target,
    )
