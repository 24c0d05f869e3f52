"""The reference training semantics (SPEC 2) under PyTorch Lightning's own Trainer, on our network.

Test-only: it proves that train.py and Lightning agree bit for bit, and that our checkpoints resume in
Lightning. The tool itself never imports Lightning.

    seed_everything(seed)
    module = ReferenceModule(learning_rate, batch_size, seed=seed)
    train_loader, val_loader = make_loaders(graph_dir, train_csv, val_csv, batch_size)
    trainer = make_trainer(save_dir, num_epochs, accumulate_grad_batches)
    trainer.fit(module, train_loader, val_loader)
    finish_like_the_guide(save_dir)  # last.ckpt -> topo_last.ckpt, best copy

`run_reference(...)` does all of it; `python -m tests.lightning_reference ...` runs it in its own process.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from torch.utils.data import Dataset
from torch_geometric.loader import DataLoader

from model.graph_io import load_graph
from model.topoqa import TopoQA, build_model

CHECKPOINT_FILENAME = "topo_{epoch}_{val_loss:.5f}"


class ReferenceModule(pl.LightningModule):
    """TopoQA as a LightningModule whose state dict has the network's own keys (no prefix)."""

    def __init__(self, learning_rate: float, batch_size: int, seed: int | None = None) -> None:
        super().__init__()
        # Adopt the network's children so parameters keep TopoQA's names and creation order.
        for name, child in build_model(seed).named_children():
            self.add_module(name, child)
        self.learning_rate = learning_rate
        self.batch_size = batch_size

    forward = TopoQA.forward

    def _mse(self, batch) -> torch.Tensor:
        prediction = self(batch.x, batch.edge_index, batch.edge_attr, batch.batch)
        return F.mse_loss(prediction, batch.y.view(-1, 1))

    def training_step(self, batch, batch_idx):
        loss = self._mse(batch)
        self.log("train_mse", loss, on_step=False, on_epoch=True, batch_size=self.batch_size)
        return loss

    def validation_step(self, batch, batch_idx):
        loss = self._mse(batch)
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=self.batch_size)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate)


class GraphFiles(Dataset):
    """Reads one graph file per item, every time, like the reference script."""

    def __init__(self, graph_dir: str | os.PathLike, label_file: str | os.PathLike) -> None:
        with open(label_file, newline="") as handle:
            names = [row["MODEL"] for row in csv.DictReader(handle)]
        self.paths = [Path(graph_dir) / f"{name}.pt" for name in names]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        return load_graph(self.paths[index])


def make_loaders(graph_dir, train_label_file, val_label_file, batch_size: int) -> tuple[DataLoader, DataLoader]:
    """PyG loaders in CSV order, no shuffle, no workers."""
    train = DataLoader(GraphFiles(graph_dir, train_label_file), batch_size=batch_size, shuffle=False)
    val = DataLoader(GraphFiles(graph_dir, val_label_file), batch_size=batch_size, shuffle=False)
    return train, val


def make_trainer(
    save_dir: str | os.PathLike, num_epochs: int, accumulate_grad_batches: int, deterministic: bool = True
) -> pl.Trainer:
    """A CPU Trainer with the reference's checkpointing (3 best by val_loss, plus last) and CSV metrics."""
    checkpoint = ModelCheckpoint(
        dirpath=save_dir,
        filename=CHECKPOINT_FILENAME,
        monitor="val_loss",
        mode="min",
        save_top_k=3,
        save_last=True,
    )
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=num_epochs,
        accumulate_grad_batches=accumulate_grad_batches,
        deterministic=deterministic,
        callbacks=[checkpoint],
        logger=CSVLogger(save_dir, name="logs", version=0),
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def metrics_file(save_dir: str | os.PathLike) -> Path:
    return Path(save_dir) / "logs" / "version_0" / "metrics.csv"


def finish_like_the_guide(save_dir: str | os.PathLike, trainer: pl.Trainer) -> None:
    """The reproduction guide's last step: rename last.ckpt and copy the best checkpoint."""
    save_dir = Path(save_dir)
    os.replace(save_dir / "last.ckpt", save_dir / "topo_last.ckpt")
    callback = trainer.checkpoint_callback
    best = Path(callback.best_model_path)
    shutil.copyfile(best, save_dir / f"topo_best_val_loss={float(callback.best_model_score):.5f}.ckpt")


def run_reference(
    save_dir: str | os.PathLike,
    *,
    graph_dir,
    train_label_file,
    val_label_file,
    batch_size: int,
    learning_rate: float,
    num_epochs: int,
    accumulate_grad_batches: int,
    seed: int,
) -> pl.Trainer:
    """Train like the reference script (one intra-op thread) and return the finished Trainer."""
    torch.set_num_threads(1)
    pl.seed_everything(seed, verbose=False)
    module = ReferenceModule(learning_rate, batch_size)
    train_loader, val_loader = make_loaders(graph_dir, train_label_file, val_label_file, batch_size)
    trainer = make_trainer(save_dir, num_epochs, accumulate_grad_batches)
    trainer.fit(module, train_loader, val_loader)
    finish_like_the_guide(save_dir, trainer)
    return trainer


def main() -> None:
    """`python -m tests.lightning_reference --graph_dir ... --save_dir ...`: the reference run in its own process."""
    import argparse

    parser = argparse.ArgumentParser(description=run_reference.__doc__)
    for name in ("graph_dir", "train_label_file", "val_label_file", "save_dir"):
        parser.add_argument(f"--{name}", required=True)
    for name, kind in (
        ("batch_size", int),
        ("learning_rate", float),
        ("num_epochs", int),
        ("accumulate_grad_batches", int),
        ("seed", int),
    ):
        parser.add_argument(f"--{name}", type=kind, required=True)
    args = vars(parser.parse_args())
    run_reference(args.pop("save_dir"), **args)


if __name__ == "__main__":
    main()
