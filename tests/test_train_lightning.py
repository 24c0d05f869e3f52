"""train.py against PyTorch Lightning's own Trainer (reference semantics, tests/lightning_reference.py) on a
configuration unlike the shipped one: generated graphs (training/synthetic_graphs.py), their order, batch size
(partial last batches), accumulation, learning rate, seed and epochs. Everything must be equal bit for bit.
Both run on the same machine, so no reference file is needed: Lightning is the oracle."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from model.checkpoint import read_checkpoint
from tests.test_train_helpers import (
    checkpoint_names,
    load_checkpoint,
    normalised_callback_state,
    reference_names,
    run_lightning,
    run_python,
    run_train,
    write_labels,
)
from training.best_checkpoints import STATE_KEY
from training.synthetic_graphs import write_synthetic_set

SETTINGS = {"batch_size": 12, "accumulate_grad_batches": 4, "learning_rate": 0.003, "num_epochs": 5, "seed": 7}


@pytest.fixture(scope="module")
def graph_set(tmp_path_factory) -> Path:
    """128 generated graphs of 20 to 120 nodes with their labels (graphs/, train.csv, val.csv)."""
    folder = tmp_path_factory.mktemp("lightning_graphs")
    write_synthetic_set(folder, count=128, seed=19, min_nodes=20, max_nodes=120)
    return folder


@pytest.fixture(scope="module")
def both_runs(tmp_path_factory, graph_set) -> tuple[Path, Path]:
    """(train.py run, Lightning run) on 64 training graphs (6 batches, the last of 4; Adam steps after
    batches 4 and 6) and 20 validation graphs (batches of 12 and 8), in an order the CSVs do not have."""
    run_dir = graph_set
    names = reference_names(run_dir)[::-1]
    assert len(names) == 128
    work = tmp_path_factory.mktemp("lightning_comparison")
    data = {
        "graph_dir": run_dir / "graphs",
        "train_label_file": write_labels(work / "train.csv", names[::2]),
        "val_label_file": write_labels(work / "val.csv", names[1::2][:20]),
    }
    run_train(
        *[item for key, value in {**data, **SETTINGS}.items() for item in (f"--{key}", value)],
        "--save_dir",
        work / "ours",
    )
    run_lightning(work / "lightning", **data, **SETTINGS)
    return work / "ours", work / "lightning"


def test_same_checkpoint_files(both_runs):
    ours, lightning = both_runs
    assert checkpoint_names(ours) == checkpoint_names(lightning)
    assert len([name for name in checkpoint_names(ours) if name.startswith("topo_epoch=")]) == 3


def test_metrics_csv_is_byte_identical_to_lightning_csvlogger(both_runs):
    ours, lightning = both_runs
    assert (ours / "metrics.csv").read_bytes() == (lightning / "logs" / "version_0" / "metrics.csv").read_bytes()


def test_every_checkpoint_is_bit_identical(both_runs):
    ours, lightning = both_runs
    for name in checkpoint_names(lightning):
        mine, theirs = load_checkpoint(ours / name), load_checkpoint(lightning / name)
        assert (mine["epoch"], mine["global_step"]) == (theirs["epoch"], theirs["global_step"]), name
        for key, tensor in theirs["state_dict"].items():
            assert torch.equal(mine["state_dict"][key], tensor), (name, key)
        adam_mine, adam_theirs = mine["optimizer_states"][0], theirs["optimizer_states"][0]
        assert adam_mine["param_groups"] == adam_theirs["param_groups"]
        assert list(adam_mine["state"]) == list(adam_theirs["state"])
        for index, entry in adam_theirs["state"].items():
            for field, value in entry.items():
                assert torch.equal(adam_mine["state"][index][field], value), (name, index, field)
        assert mine["loops"] == theirs["loops"], name
        assert normalised_callback_state(mine) == normalised_callback_state(theirs), name
        assert mine["callbacks"][STATE_KEY]["dirpath"] == os.path.realpath(ours)


def test_lightning_resumes_from_our_checkpoint(tmp_path, graph_set):
    """Trainer.fit(ckpt_path=our topo_last.ckpt) restores weights, Adam, counters and the best-k state."""
    run_dir = graph_set
    names = reference_names(run_dir)
    save_dir = tmp_path / "run"
    run_train(
        "--graph_dir",
        run_dir / "graphs",
        "--train_label_file",
        write_labels(tmp_path / "train.csv", names[:32]),
        "--val_label_file",
        write_labels(tmp_path / "val.csv", names[32:48]),
        "--batch_size",
        8,
        "--accumulate_grad_batches",
        2,
        "--num_epochs",
        2,
        "--save_dir",
        save_dir,
    )
    shutil.copyfile(save_dir / "topo_last.ckpt", tmp_path / "ours_last.ckpt")
    script = f"""
import json, torch
from tests.lightning_reference import ReferenceModule, make_loaders, make_trainer
torch.set_num_threads(1)
module = ReferenceModule(learning_rate=0.005, batch_size=8)
graphs, labels = {str(run_dir / "graphs")!r}, {str(tmp_path)!r}
train, val = make_loaders(graphs, labels + "/train.csv", labels + "/val.csv", 8)
trainer = make_trainer({str(save_dir)!r}, num_epochs=3, accumulate_grad_batches=2)
trainer.fit(module, train, val, ckpt_path={str(tmp_path / "ours_last.ckpt")!r})
callback = trainer.checkpoint_callback
print("RESULT", json.dumps([trainer.current_epoch, trainer.global_step, sorted(callback.best_k_models)]))
"""
    output = run_python("-c", script).stdout
    result = next(line for line in output.splitlines() if line.startswith("RESULT "))
    epoch, global_step, best_k = json.loads(result.removeprefix("RESULT "))
    ours = read_checkpoint(tmp_path / "ours_last.ckpt").lightning
    # 32 graphs / 8 = 4 batches, 2 steps per epoch: 4 steps after our 2 epochs, 6 after Lightning's third.
    assert ours["global_step"] == 4
    assert (epoch, global_step) == (3, 6)
    assert len(best_k) == 3
    assert {os.path.basename(path) for path in ours["callbacks"][STATE_KEY]["best_k_models"]} <= {
        os.path.basename(path) for path in best_k
    }
