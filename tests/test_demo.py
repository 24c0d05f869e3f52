"""The README's first command, `bash scripts/demo.sh`, end to end (outputs redirected to a temporary folder).

The demo scores examples/ with $TOPOQA_CHECKPOINT (here the checkpoint trained on generated graphs in
conftest.py, so the test needs no reference) and trains on a generated set. Oracles: a separate infer.py run
on the same examples, the network re-evaluated on the validation graphs, and the converter's verify."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch

from model.checkpoint import load_model, read_checkpoint
from tests.conftest import REPO_ROOT
from training.graph_sets import GraphSet


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def default_demo_state() -> list[tuple[str, int]]:
    folder = REPO_ROOT / "results" / "demo"
    return sorted((str(path), path.stat().st_mtime_ns) for path in folder.rglob("*")) if folder.exists() else []


@pytest.fixture(scope="module")
def demo(tmp_path_factory, trained_checkpoint) -> tuple[Path, subprocess.CompletedProcess]:
    before = default_demo_state()
    out = tmp_path_factory.mktemp("demo") / "demo"
    environment = {
        **os.environ,
        "TOPOQA_DEMO_DIR": str(out),
        "TOPOQA_CHECKPOINT": str(trained_checkpoint),
        "TOPOQA_VENV": sys.prefix,  # the environment running the tests: nothing new to install
    }
    environment.pop("TOPOQA_CACHE_DIR", None)
    finished = subprocess.run(
        ["bash", "scripts/demo.sh"], cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=900
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert default_demo_state() == before  # nothing written to the default results/demo
    return out, finished


def test_demo_scores_equal_a_separate_infer_run(demo, tmp_path, trained_checkpoint):
    out, _ = demo
    separate = tmp_path / "separate"
    environment = {**os.environ, "TOPOQA_CACHE_DIR": tempfile.mkdtemp(prefix="topoqa-test-cache-")}
    finished = subprocess.run(
        [sys.executable, "infer.py", "-c", "examples", "-r", str(separate), "--checkpoint", str(trained_checkpoint),
         "--jobs", "1", "--no_cache"],
        cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert [row["MODEL"] for row in read_rows(out / "scores" / "result.csv")] == ["1BD2", "1HVR", "4E43"]
    for name in ("result.csv", "ranking.csv", "skipped.csv"):
        assert (out / "scores" / name).read_bytes() == (separate / name).read_bytes(), name
    assert [row["MODEL"] for row in read_rows(out / "scores" / "skipped.csv")] == ["README.md"]
    report = (out / "scores" / "report.html").read_text()
    assert all(name in report for name in ("1BD2", "1HVR", "4E43", "README.md"))  # the demo shows its report
    assert any((out / "cache").rglob("*"))  # the demo's cache is used, and stays inside its own folder


def test_demo_training_run_is_consistent_and_its_checkpoint_verifies(demo):
    out, finished = demo
    training, graphs = out / "training", out / "train_graphs"
    rows = read_rows(training / "metrics.csv")
    val_losses = {int(row["epoch"]): float(row["val_loss"]) for row in rows if row["val_loss"]}
    assert sorted(val_losses) == [0, 1, 2]
    assert sorted(int(row["epoch"]) for row in rows if row["train_mse"]) == [0, 1, 2]

    # The logged val_loss of the last epoch is the saved network's loss on the validation graphs
    # (the mean over batches of 16, as Lightning logs it).
    last = read_checkpoint(training / "topo_last.ckpt")
    assert last.epoch == 2
    model = load_model(training / "topo_last.ckpt")
    val_set = GraphSet.load(graphs / "graphs", graphs / "val.csv", progress=False)
    losses = []
    with torch.no_grad():
        for start in range(0, len(val_set), 16):
            batch = Batch.from_data_list([val_set[i] for i in range(start, min(start + 16, len(val_set)))])
            prediction = model(batch.x, batch.edge_index, batch.edge_attr, batch.batch)
            losses.append(F.mse_loss(prediction, batch.y.view(-1, 1)))
    assert val_losses[2] == pytest.approx(torch.stack(losses).mean().item(), abs=1e-6, rel=0)

    # The best copy is the epoch with the lowest val_loss; the safetensors twin holds the same weights.
    best_epoch = min(val_losses, key=val_losses.get)
    (best_copy,) = training.glob("topo_best_val_loss=*.ckpt")
    assert read_checkpoint(best_copy).epoch == best_epoch
    verify = subprocess.run(
        [sys.executable, "convert.py", "verify", str(training / "topo_last.safetensors"),
         "--reference", str(training / "topo_last.ckpt"), "--graphs", str(graphs / "graphs")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]
    assert "weights: IDENTICAL" in verify.stdout and "verdict: PASS" in verify.stdout
    assert "format: Lightning checkpoint, epoch 2" in finished.stdout  # the closing `inspect`
