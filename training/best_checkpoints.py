"""Best-k checkpoint bookkeeping with the decisions and saved state of Lightning's `ModelCheckpoint`.

Mirrors `ModelCheckpoint(dirpath, filename="topo_{epoch}_{val_loss:.5f}", monitor="val_loss", mode="min",
save_top_k=3, save_last=True)` at the end of each validation: keep the k lowest val_loss epochs, replace the
worst when a better one arrives, and write the same state dict Lightning writes into every checkpoint.

Paths: like Lightning, `dirpath` is the real (absolute) path of the save folder and every path in the state
is `dirpath/<file name>`, so Lightning restores this state when it resumes with the same folder. The
recorded reference shows paths relative to its folder and `last.ckpt`: its files were moved and renamed
after training; ours name the file that exists, `topo_last.ckpt`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

# ModelCheckpoint.state_key for monitor="val_loss", mode="min", one checkpoint per epoch.
STATE_KEY = (
    "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0, "
    "'every_n_epochs': 1, 'train_time_interval': None}"
)
LAST_NAME = "topo_last.ckpt"


def topk_name(epoch: int, val_loss: float) -> str:
    return f"topo_epoch={epoch}_val_loss={val_loss:.5f}.ckpt"


def best_copy_name(val_loss: float) -> str:
    """The reproduction guide's copy of the best checkpoint."""
    return f"topo_best_val_loss={val_loss:.5f}.ckpt"


@dataclass
class TopkDecision:
    save: str | None  # path of the new top-k checkpoint to write, or None
    remove: str | None  # path of the checkpoint that fell out of the top k (delete after saving)


class BestCheckpoints:
    """Which epochs are the k best by val_loss (lower is better), in Lightning's terms."""

    def __init__(self, dirpath: str | os.PathLike, top_k: int = 3) -> None:
        self.dirpath = os.path.realpath(dirpath)
        self.top_k = top_k
        self.best_k_models: dict[str, Tensor] = {}
        self.kth_best_model_path = ""
        self.kth_value: Tensor = torch.tensor(math.inf)
        self.best_model_path = ""
        self.best_model_score: Tensor | None = None
        self.current_score: Tensor | None = None
        self.last_model_path = ""

    def path(self, name: str) -> str:
        return os.path.join(self.dirpath, name)

    def update(self, epoch: int, val_loss: Tensor) -> TopkDecision:
        """Register an epoch's val_loss (a float32 scalar tensor); say what to save and what to delete."""
        current = val_loss.detach().cpu()
        if len(self.best_k_models) == self.top_k and not bool(current < self.best_k_models[self.kth_best_model_path]):
            return TopkDecision(save=None, remove=None)
        removed = None
        if len(self.best_k_models) == self.top_k:
            removed = self.kth_best_model_path
            self.best_k_models.pop(removed)
        if torch.isnan(current):
            current = torch.tensor(math.inf)
        path = self.path(topk_name(epoch, float(current)))
        self.current_score = current
        self.best_k_models[path] = current
        if len(self.best_k_models) == self.top_k:
            self.kth_best_model_path = max(self.best_k_models, key=self.best_k_models.get)
            self.kth_value = self.best_k_models[self.kth_best_model_path]
        self.best_model_path = min(self.best_k_models, key=self.best_k_models.get)
        self.best_model_score = self.best_k_models[self.best_model_path]
        return TopkDecision(save=path, remove=removed if removed != path else None)

    def state_dict(self) -> dict[str, Any]:
        """Exactly the keys, order and types of `ModelCheckpoint.state_dict()`."""
        return {
            "monitor": "val_loss",
            "best_model_score": self.best_model_score,
            "best_model_path": self.best_model_path,
            "current_score": self.current_score,
            "dirpath": self.dirpath,
            "best_k_models": dict(self.best_k_models),
            "kth_best_model_path": self.kth_best_model_path,
            "kth_value": self.kth_value,
            "last_model_path": self.last_model_path,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from a checkpoint's state; paths are re-rooted here, so a moved run folder still resumes."""

        def here(path: str) -> str:
            return self.path(os.path.basename(path)) if path else ""

        self.best_model_score = state["best_model_score"]
        self.best_model_path = here(state["best_model_path"])
        self.current_score = state["current_score"]
        self.best_k_models = {here(path): score for path, score in state["best_k_models"].items()}
        self.kth_best_model_path = here(state["kth_best_model_path"])
        self.kth_value = state["kth_value"]
        self.last_model_path = here(state["last_model_path"])
