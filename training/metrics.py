"""Per-epoch training metrics as the reference logged them, and the `metrics.csv` it wrote."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

METRICS_COLUMNS = ["epoch", "step", "train_mse", "val_loss"]


class EpochMean:
    """Lightning's epoch mean of a value logged with a constant `batch_size`: a float32 running sum of
    value * batch_size divided by batch_size * count. (Averaging in float64 differs at ~1e-9.)"""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.total: Tensor = torch.zeros((), dtype=torch.float32)
        self.count: Tensor = torch.zeros((), dtype=torch.int64)

    def add(self, value: Tensor) -> None:
        value = value.detach().to(torch.float32)
        self.total = self.total.to(value.device) + value * self.batch_size
        self.count = self.count.to(value.device) + self.batch_size

    def compute(self, reduce_sum=None) -> Tensor:
        """The mean (float32 scalar on CPU); `reduce_sum` (e.g. `accelerator.reduce`) sums over processes first."""
        total, count = self.total, self.count
        if reduce_sum is not None:
            total, count = reduce_sum(total), reduce_sum(count)
        return (total / count).cpu()


def metrics_rows(epoch: int, step: int, train_mse: float, val_loss: float) -> list[dict[str, Any]]:
    """Lightning CSVLogger rows for one epoch: the validation row, then the training row."""
    return [
        {"epoch": epoch, "step": step, "train_mse": "", "val_loss": val_loss},
        {"epoch": epoch, "step": step, "train_mse": train_mse, "val_loss": ""},
    ]
