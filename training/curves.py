"""curves.png in a run folder: train_mse and val_loss per epoch, best epoch marked, drawn from metrics.csv.

train.py calls `write_curves` after each epoch's files (main process), so the picture always shows the run as
far as metrics.csv does, resumed sessions included. Torch-free; matplotlib is imported on the first call.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from data.files import atomic_write
from model.plots import new_figure, png_bytes

CURVES_NAME = "curves.png"
CURVES_SIZE = (960, 540)  # pixels
LOG_SCALE_RATIO = 20  # above this ratio of the largest to the smallest value, a log axis shows both ends


def read_epoch_metrics(metrics_csv: str | os.PathLike) -> list[tuple[int, float, float]]:
    """(epoch, train_mse, val_loss) per epoch from a Lightning-CSVLogger metrics.csv, whose validation row and
    training row of an epoch each fill one of the two columns; NaN where an epoch lacks one."""
    epochs: dict[int, dict[str, float]] = {}
    with open(metrics_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            values = epochs.setdefault(int(row["epoch"]), {})
            for column in ("train_mse", "val_loss"):
                if row.get(column):
                    values[column] = float(row[column])
    return [(epoch, values.get("train_mse", math.nan), values.get("val_loss", math.nan))
            for epoch, values in sorted(epochs.items())]


def best_epoch(epochs: list[tuple[int, float, float]]) -> tuple[int, float] | None:
    """(epoch, val_loss) of the lowest val_loss, the earliest on ties (ModelCheckpoint's best); None if none."""
    finite = [(val_loss, epoch) for epoch, _, val_loss in epochs if not math.isnan(val_loss)]
    if not finite:
        return None
    val_loss, epoch = min(finite)
    return epoch, val_loss


def write_curves(save_dir: str | os.PathLike) -> Path:
    """Draw save_dir/metrics.csv into save_dir/curves.png (replaced atomically); returns its path."""
    save_dir = Path(save_dir)
    png = curves_png(read_epoch_metrics(save_dir / "metrics.csv"), title=save_dir.resolve().name)
    path = save_dir / CURVES_NAME
    atomic_write(path, lambda temporary: temporary.write_bytes(png), overwrite=True)
    return path


def curves_png(epochs: list[tuple[int, float, float]], title: str = "training run") -> bytes:
    numbers = [epoch for epoch, _, _ in epochs]
    train = [train_mse for _, train_mse, _ in epochs]
    val = [val_loss for _, _, val_loss in epochs]
    figure = new_figure(*CURVES_SIZE)
    axes = figure.add_subplot()
    axes.plot(numbers, train, marker="o", markersize=3, color="#4477aa", label="train_mse")
    axes.plot(numbers, val, marker="o", markersize=3, color="#ee7733", label="val_loss")
    best = best_epoch(epochs)
    if best is not None:
        axes.axvline(best[0], color="#228833", linestyle="--", linewidth=1)
        axes.plot([best[0]], [best[1]], marker="*", markersize=14, color="#228833", linestyle="none",
                  label=f"best: epoch {best[0]}, val_loss {best[1]:.5f}")
    positive = [value for value in train + val if value > 0 and math.isfinite(value)]
    if positive and max(positive) / min(positive) > LOG_SCALE_RATIO:
        axes.set_yscale("log")
    axes.set_xlabel("epoch (as in the checkpoint names)")
    axes.set_ylabel("mean squared error")
    if numbers:
        axes.set_xlim(numbers[0] - 0.5, numbers[-1] + 0.5)
    if len(numbers) <= 20:
        axes.set_xticks(numbers)
    axes.grid(alpha=0.3)
    axes.legend()
    axes.set_title(f"{title}: {len(epochs)} epoch(s)")
    described = f"epochs {numbers[0]}-{numbers[-1]}" if numbers else "no epochs"
    if best is not None:
        described += f", best epoch {best[0]} val_loss {best[1]!r}"
    return png_bytes(figure, f"train_mse and val_loss per epoch: {described}")
