"""curves.png: train.py draws train_mse and val_loss per epoch into the run folder after every epoch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from data.faults import FAULT_ENV
from model.checkpoint_paths import safetensors_metadata
from model.plots import png_size, png_text
from tests.conftest import REPO_ROOT
from tests.test_train_helpers import read_metrics, run_train
from training.curves import CURVES_NAME, CURVES_SIZE, best_epoch, read_epoch_metrics, write_curves


def described(path: Path) -> str:
    """What the picture says it shows (its PNG Description), after checking it is a PNG of the expected size."""
    data = path.read_bytes()
    assert png_size(data) == CURVES_SIZE
    return png_text(data)["Description"]


def write_metrics(folder: Path, rows: list[tuple[int, str, str]]) -> None:
    """metrics.csv as Lightning's CSVLogger writes it: per epoch a validation row, then a training row."""
    lines = ["epoch,step,train_mse,val_loss"]
    for epoch, train_mse, val_loss in rows:
        lines += [f"{epoch},{epoch},,{val_loss}", f"{epoch},{epoch},{train_mse},"]
    (folder / "metrics.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode())


def test_curves_show_every_epoch_and_the_best(tmp_path):
    write_metrics(tmp_path, [(0, "0.5", "0.4"), (1, "0.3", "0.25"), (2, "0.2", "0.25"), (3, "0.1", "0.3")])
    assert read_epoch_metrics(tmp_path / "metrics.csv") == [
        (0, 0.5, 0.4), (1, 0.3, 0.25), (2, 0.2, 0.25), (3, 0.1, 0.3),
    ]  # fmt: skip
    path = write_curves(tmp_path)
    assert path == tmp_path / CURVES_NAME
    # The lowest val_loss, the earliest on a tie: ModelCheckpoint's best.
    assert described(path) == "train_mse and val_loss per epoch: epochs 0-3, best epoch 1 val_loss 0.25"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "metrics.csv"]  # no temporary left


def test_an_epoch_without_val_loss_is_never_the_best(tmp_path):
    write_metrics(tmp_path, [(0, "0.5", "nan"), (1, "0.3", "0.35")])
    assert best_epoch(read_epoch_metrics(tmp_path / "metrics.csv")) == (1, 0.35)
    assert "best epoch 1" in described(write_curves(tmp_path))


def test_a_training_run_writes_curves(generated_run):
    run = generated_run / "run"
    metrics = read_metrics(run / "metrics.csv")
    best = int(safetensors_metadata(run / "topo_best.safetensors")["epoch"])  # train.py's own best epoch
    best_loss = next(float(row["val_loss"]) for row in metrics if row["val_loss"] and int(row["epoch"]) == best)
    assert described(run / CURVES_NAME).endswith(f"epochs 0-1, best epoch {best} val_loss {best_loss!r}")


def test_curves_are_refreshed_after_every_epoch(generated_run, tmp_path):
    """A run killed right after epoch 0's files (fault hook) already has the picture of epoch 0; --resume
    redraws it with epoch 1."""
    config = generated_run / "set" / "config.yaml"
    save_dir = tmp_path / "run"
    command = [sys.executable, "train.py", "--config", str(config), "--save_dir", str(save_dir)]
    environment = {**os.environ, "TQDM_DISABLE": "1", FAULT_ENV: "epoch-saved@epoch=0:die"}
    killed = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    first = (save_dir / CURVES_NAME).read_bytes()
    assert described(save_dir / CURVES_NAME).startswith("train_mse and val_loss per epoch: epochs 0-0, best epoch 0")
    run_train("--config", config, "--save_dir", save_dir, "--resume")
    assert "epochs 0-1" in described(save_dir / CURVES_NAME)
    assert (save_dir / CURVES_NAME).read_bytes() != first
    # The same run uninterrupted draws the same picture.
    assert (save_dir / CURVES_NAME).read_bytes() == (generated_run / "run" / CURVES_NAME).read_bytes()


def test_importing_the_plot_modules_leaves_matplotlib_and_torch_for_later():
    loaded = "sorted(m for m in ('matplotlib', 'torch') if m in sys.modules)"
    script = f"import sys, training.curves, model.report; print({loaded})"
    completed = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "[]"
