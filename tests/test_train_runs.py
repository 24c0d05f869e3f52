"""Whole train.py runs: resume after an interruption, never clobbering a run, two processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch

from data.faults import FAULT_ENV
from data.files import sha256_file
from model.checkpoint import load_model
from tests.conftest import REPO_ROOT
from tests.test_train_helpers import (
    checkpoint_names,
    load_checkpoint,
    read_metrics,
    run_python,
    run_train,
    write_labels,
)
from training.best_checkpoints import STATE_KEY
from training.graph_sets import GraphSet
from training.synthetic_graphs import write_synthetic_set


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> list:
    """train.py arguments for 32 training graphs (4 batches of 8, Adam steps after 3 and 4) and 20 validation
    graphs (batches of 8, 8, 4) from a generated set (no reference needed), 4 epochs."""
    folder = tmp_path_factory.mktemp("small_data")
    write_synthetic_set(folder, count=52, seed=5, min_nodes=20, max_nodes=80)
    names = sorted(path.stem for path in (folder / "graphs").glob("*.pt"))
    return [
        "--graph_dir", folder / "graphs",
        "--train_label_file", write_labels(folder / "train_32.csv", names[:32]),
        "--val_label_file", write_labels(folder / "val_20.csv", names[32:]),
        "--batch_size", 8, "--accumulate_grad_batches", 3, "--learning_rate", 0.004,
        "--num_epochs", 4, "--seed", 11,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted(small_data, tmp_path_factory) -> Path:
    save_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    run_train(*small_data, "--save_dir", save_dir)
    return save_dir


def test_resume_after_interruption_equals_uninterrupted_run(small_data, uninterrupted, tmp_path):
    save_dir = tmp_path / "run"
    run_train(*small_data, "--save_dir", save_dir, "--stop_after_epoch", 1)
    assert load_checkpoint(save_dir / "topo_last.ckpt")["epoch"] == 1
    resumed = run_train(*small_data, "--save_dir", save_dir, "--resume")
    assert "resuming after epoch 1" in resumed.stdout
    assert checkpoint_names(save_dir) == checkpoint_names(uninterrupted)
    for name in checkpoint_names(uninterrupted):
        ours, theirs = load_checkpoint(save_dir / name), load_checkpoint(uninterrupted / name)
        assert (ours["epoch"], ours["global_step"]) == (theirs["epoch"], theirs["global_step"])
        assert all(torch.equal(ours["state_dict"][key], value) for key, value in theirs["state_dict"].items()), name
        adam_ours, adam_theirs = ours["optimizer_states"][0]["state"], theirs["optimizer_states"][0]["state"]
        assert all(
            torch.equal(adam_ours[index][field], value)
            for index, entry in adam_theirs.items()
            for field, value in entry.items()
        ), name
        assert ours["loops"] == theirs["loops"]
    assert (save_dir / "metrics.csv").read_bytes() == (uninterrupted / "metrics.csv").read_bytes()
    sessions = json.loads((save_dir / "environment.json").read_text())["sessions"]
    assert [session["start_epoch"] for session in sessions] == [0, 2]


def test_resume_after_a_killed_process_equals_uninterrupted_run(small_data, uninterrupted, tmp_path):
    """SIGKILL right after epoch 1's files are written (a fault hook in train.py, no race), then --resume."""
    save_dir = tmp_path / "run"
    command = [sys.executable, "train.py", *map(str, small_data), "--save_dir", str(save_dir)]
    environment = {**os.environ, "TQDM_DISABLE": "1", FAULT_ENV: "epoch-saved@epoch=1:die"}
    killed = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert load_checkpoint(save_dir / "topo_last.ckpt")["epoch"] == 1
    assert [row["epoch"] for row in read_metrics(save_dir / "metrics.csv")] == ["0", "0", "1", "1"]
    resumed = run_train(*small_data, "--save_dir", save_dir, "--resume")
    assert "resuming after epoch 1" in resumed.stdout
    assert checkpoint_names(save_dir) == checkpoint_names(uninterrupted)
    for name in checkpoint_names(uninterrupted):
        ours, theirs = load_checkpoint(save_dir / name), load_checkpoint(uninterrupted / name)
        assert all(torch.equal(ours["state_dict"][key], value) for key, value in theirs["state_dict"].items()), name
    assert (save_dir / "metrics.csv").read_bytes() == (uninterrupted / "metrics.csv").read_bytes()
    assert not list(save_dir.glob("*.tmp")) and not list(save_dir.glob(".*.tmp"))


def test_refuses_to_overwrite_an_earlier_run(small_data, uninterrupted):
    before = sha256_file(uninterrupted / "topo_last.ckpt")
    result = run_train(*small_data, "--save_dir", uninterrupted, check=False)
    assert result.returncode != 0
    assert "already holds a training run" in result.stderr and "--resume" in result.stderr
    assert sha256_file(uninterrupted / "topo_last.ckpt") == before


def test_resume_refuses_other_settings(small_data, uninterrupted):
    changed = [*small_data, "--learning_rate", 0.01, "--num_epochs", 5]
    result = run_train(*changed, "--save_dir", uninterrupted, "--resume", check=False)
    assert result.returncode != 0
    assert "learning_rate: 0.004 -> 0.01" in result.stderr


def test_overwrite_replaces_the_earlier_run(small_data, tmp_path):
    save_dir = tmp_path / "run"
    run_train(*small_data, "--save_dir", save_dir, "--num_epochs", 2)
    (save_dir / "notes.txt").write_text("mine")
    run_train(*small_data, "--save_dir", save_dir, "--num_epochs", 1, "--overwrite")
    assert [row["epoch"] for row in read_metrics(save_dir / "metrics.csv")] == ["0", "0"]
    assert not [name for name in checkpoint_names(save_dir) if name.startswith("topo_epoch=1")]
    assert (save_dir / "notes.txt").read_text() == "mine"  # only train.py's own files are replaced


def test_two_processes_train_and_gather_validation_without_duplicates(small_data, tmp_path):
    save_dir = tmp_path / "run"
    run_python(
        "-m", "accelerate.commands.launch", "--config_file", "accelerate_config/ddp.yaml",
        "--num_processes", 2, "train.py", "--cpu", "--parallel", "ddp", *small_data, "--num_epochs", 2,
        "--save_dir", save_dir,
    )  # fmt: skip
    sessions = json.loads((save_dir / "environment.json").read_text())["sessions"]
    assert sessions[0]["num_processes"] == 2
    last = load_checkpoint(save_dir / "topo_last.ckpt")
    # 4 batches over 2 processes = 2 each; fewer than 3 to accumulate, so one step per epoch.
    assert last["global_step"] == 2
    assert len(last["topoqa_resume"]["rng_states"]) == 2
    assert len(last["optimizer_states"][0]["state"]) == 30  # unused conv3 still gets no Adam state under DDP
    # 20 validation graphs in batches of 8 over 2 processes pads the last round with 12 repeated graphs;
    # the logged val_loss must be the loss over the 20 graphs, each once.
    arguments = dict(zip(small_data[::2], small_data[1::2], strict=True))
    val_set = GraphSet.load(arguments["--graph_dir"], arguments["--val_label_file"], progress=False)
    model = load_model(save_dir / "topo_last.ckpt")
    total = torch.zeros(())
    with torch.no_grad():
        for start in range(0, len(val_set), 8):
            batch = Batch.from_data_list([val_set[i] for i in range(start, min(start + 8, len(val_set)))])
            prediction = model(batch.x, batch.edge_index, batch.edge_attr, batch.batch)
            total = total + F.mse_loss(prediction, batch.y.view(-1, 1)) * 8
    expected = (total / (8 * 3)).item()
    logged = float(read_metrics(save_dir / "metrics.csv")[-2]["val_loss"])
    assert logged == pytest.approx(expected, abs=1e-6, rel=0)
    assert last["callbacks"][STATE_KEY]["current_score"].item() == pytest.approx(expected, abs=1e-6, rel=0)
