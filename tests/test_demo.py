"""The README's first command, `bash scripts/demo.sh`, end to end (outputs redirected to a temporary folder)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import torch

from tests.conftest import REPO_ROOT, need_reference


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def default_demo_state() -> list[tuple[str, int]]:
    folder = REPO_ROOT / "results" / "demo"
    return sorted((str(path), path.stat().st_mtime_ns) for path in folder.rglob("*")) if folder.exists() else []


def test_demo_scores_the_examples_and_trains(tmp_path):
    before = default_demo_state()
    checkpoint = need_reference("topoqa.ckpt.original")
    out = tmp_path / "demo"
    environment = {
        **os.environ,
        "TOPOQA_DEMO_DIR": str(out),
        "TOPOQA_CHECKPOINT": str(checkpoint),
        "TOPOQA_VENV": sys.prefix,  # the environment running the tests: nothing new to install
    }
    environment.pop("TOPOQA_CACHE_DIR", None)
    finished = subprocess.run(
        ["bash", "scripts/demo.sh"], cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=900
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]

    scores = read_rows(out / "scores" / "result.csv")
    assert [row["MODEL"] for row in scores] == ["1BD2", "1HVR", "4E43"]
    assert all(0.0 < float(row["PRED_DOCKQ"]) < 1.0 for row in scores)
    assert [row["MODEL"] for row in read_rows(out / "scores" / "skipped.csv")] == ["README.md"]
    assert (out / "cache").is_dir()  # the demo's cache stays inside its own folder

    training = out / "training"
    metrics = read_rows(training / "metrics.csv")
    assert sorted({int(row["epoch"]) for row in metrics}) == [0, 1, 2]
    assert all(0.0 < float(row["val_loss"]) < 1.0 for row in metrics if row["val_loss"])
    last = torch.load(training / "topo_last.ckpt", weights_only=True)
    assert last["epoch"] == 2 and len(last["state_dict"]) == 39
    assert (training / "topo_last.safetensors").is_file()
    assert "format: Lightning checkpoint, epoch 2" in finished.stdout  # the closing `inspect`
    assert default_demo_state() == before  # nothing written to the default results/demo
