"""Ranking metrics of infer.py --labels, on cases small enough to check by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model.evaluation import evaluate


def test_two_targets_by_hand():
    models = ["a1", "a2", "a3", "b1", "b2"]
    targets = ["A", "A", "A", "B", "B"]
    predicted = [0.9, 0.5, 0.1, 0.2, 0.3]
    true = [0.1, 0.6, 0.8, 0.5, 0.4]
    result = evaluate(models, targets, predicted, true)
    a, b = result.targets
    # Target A: the top-ranked model (a1) has true 0.1, the best is 0.8.
    assert a.top1_loss == pytest.approx(0.7)
    assert not a.top1_hit and a.top5_hit
    assert a.spearman == pytest.approx(-1.0)
    # Target B: b2 is ranked first, true 0.4 against the best 0.5; both acceptable.
    assert b.top1_loss == pytest.approx(0.1)
    assert b.top1_hit and b.top5_hit
    assert math.isnan(b.pearson) is False and b.pearson == pytest.approx(-1.0)
    assert result.mean_top1_loss == pytest.approx(0.4)
    assert (result.top1_hits, result.top5_hits, result.targets_with_acceptable) == (1, 2, 2)
    assert result.mse == pytest.approx(np.mean((np.array(predicted) - np.array(true)) ** 2))
    assert result.pearson == pytest.approx(np.corrcoef(predicted, true)[0, 1])


def test_top5_hit_needs_the_acceptable_model_within_five():
    models = [f"m{i}" for i in range(7)]
    predicted = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
    true = [0.0, 0.0, 0.0, 0.0, 0.0, 0.9, 0.0]
    result = evaluate(models, ["T"] * 7, predicted, true)
    assert not result.targets[0].top5_hit
    true[4] = 0.23
    assert evaluate(models, ["T"] * 7, predicted, true).targets[0].top5_hit


def test_single_model_target_has_undefined_correlation():
    result = evaluate(["x"], ["T"], [0.5], [0.4])
    assert math.isnan(result.targets[0].pearson) and math.isnan(result.pearson)
    assert result.targets[0].top1_loss == 0.0
