"""Epochs per second: train.py against a plain reimplementation of the reference Lightning-style loop that
reads every graph file per batch, both in exact mode (one intra-op thread), measured in the same run.

    python bench/bench_train.py [--graphs 1000] [--epochs 3] [--work DIR]

Generates a synthetic set of realistic-size graphs (30-240 nodes, ~4 edges per node) unless --work already
holds one, runs the baseline loop in this process and train.py in a child process, and prints both rates,
their ratio, and whether both ended with the same val_loss (they must: same semantics, same numbers).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402
from torch_geometric.loader import DataLoader  # noqa: E402

from model.graph_io import load_graph  # noqa: E402
from model.topoqa import TopoQA  # noqa: E402
from training.determinism import seed_everything  # noqa: E402
from training.synthetic_graphs import write_synthetic_set  # noqa: E402


class FilePerItem(Dataset):
    """The reference's dataset: one torch.load per graph, every epoch."""

    def __init__(self, graph_dir: Path, label_file: Path) -> None:
        with open(label_file, newline="") as handle:
            self.paths = [graph_dir / f"{row['MODEL']}.pt" for row in csv.DictReader(handle)]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        return load_graph(self.paths[index])


def baseline(data: Path, settings: dict) -> tuple[list[float], float]:
    """Reference-style loop (Lightning semantics, no Lightning): per-epoch seconds and the last val_loss."""
    torch.set_num_threads(1)
    seed_everything(settings["seed"])
    model = TopoQA()
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    batch_size, accumulate = settings["batch_size"], settings["accumulate_grad_batches"]
    train = DataLoader(FilePerItem(data / "graphs", data / "train.csv"), batch_size=batch_size)
    val = DataLoader(FilePerItem(data / "graphs", data / "val.csv"), batch_size=batch_size)
    seconds, val_loss = [], float("nan")
    for _ in range(settings["num_epochs"]):
        started = time.perf_counter()
        model.train()
        for index, batch in enumerate(train):
            loss = F.mse_loss(model(batch.x, batch.edge_index, batch.edge_attr, batch.batch), batch.y.view(-1, 1))
            (loss / accumulate).backward()
            if (index + 1) % accumulate == 0 or index + 1 == len(train):
                optimizer.step()
                optimizer.zero_grad()
        model.eval()
        total = torch.zeros(())
        with torch.no_grad():
            for batch in val:
                prediction = model(batch.x, batch.edge_index, batch.edge_attr, batch.batch)
                total = total + F.mse_loss(prediction, batch.y.view(-1, 1)) * batch_size
        val_loss = (total / (batch_size * len(val))).item()
        seconds.append(time.perf_counter() - started)
        print(f"  baseline epoch {len(seconds) - 1}: {seconds[-1]:.2f}s  val_loss {val_loss:.8f}", flush=True)
    return seconds, val_loss


def ours(data: Path, settings: dict, save_dir: Path) -> tuple[list[float], float]:
    """train.py in a child process; per-epoch seconds from its timings.csv, val_loss from metrics.csv."""
    arguments = [item for key, value in settings.items() for item in (f"--{key}", str(value))]
    command = [sys.executable, "train.py", "--config", str(data / "config.yaml"), *arguments,
               "--num_threads", "1", "--save_dir", str(save_dir), "--cpu"]  # fmt: skip
    subprocess.run(command, cwd=ROOT, check=True, env={**os.environ, "TQDM_DISABLE": "1"})
    with open(save_dir / "timings.csv", newline="") as handle:
        seconds = [float(row["epoch_seconds"]) for row in csv.DictReader(handle)]
    with open(save_dir / "metrics.csv", newline="") as handle:
        val_loss = float([row for row in csv.DictReader(handle) if row["val_loss"]][-1]["val_loss"])
    return seconds, val_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graphs", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--accumulate_grad_batches", type=int, default=32)
    parser.add_argument("--work", type=Path, help="folder for the synthetic set (kept; reused when present)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_train_"))
    if not (work / "config.yaml").exists():
        started = time.perf_counter()
        write_synthetic_set(work, count=args.graphs, seed=0)
        print(f"wrote {args.graphs} synthetic graphs to {work} in {time.perf_counter() - started:.1f}s")
    settings = {"batch_size": args.batch_size, "accumulate_grad_batches": args.accumulate_grad_batches,
                "learning_rate": 0.005, "num_epochs": args.epochs, "seed": 222}  # fmt: skip

    print(f"baseline: reference-style loop, files read per batch ({args.epochs} epochs)")
    base_seconds, base_loss = baseline(work, settings)
    print(f"train.py: in-memory graphs, batches collated once ({args.epochs} epochs)")
    ours_seconds, ours_loss = ours(work, settings, Path(tempfile.mkdtemp(prefix="bench_run_")) / "run")

    base_rate = len(base_seconds) / sum(base_seconds)
    ours_rate = len(ours_seconds) / sum(ours_seconds)
    print(f"baseline  {base_rate:.4f} epochs/s  (epochs: {', '.join(f'{s:.2f}s' for s in base_seconds)})")
    print(f"train.py  {ours_rate:.4f} epochs/s  (epochs: {', '.join(f'{s:.2f}s' for s in ours_seconds)})")
    print(f"speed ratio train.py / baseline: {ours_rate / base_rate:.2f}x")
    print(f"same final val_loss (bit for bit): {ours_loss == base_loss} ({ours_loss!r} vs {base_loss!r})")


if __name__ == "__main__":
    main()
