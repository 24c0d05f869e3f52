"""Helpers shared by the training tests (this module holds no tests): run train.py and the Lightning
reference in their own processes, write label files, compare checkpoints."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import torch

from tests.conftest import REPO_ROOT


def run_python(*args, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `python <args>` in the repository, quietly (no progress bars), and return the finished process."""
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, *map(str, args)], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{args[:3]} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        )
    return result


def run_train(*args, check: bool = True) -> subprocess.CompletedProcess:
    return run_python("train.py", *args, check=check)


def run_lightning(save_dir: Path, **settings) -> None:
    """The reference semantics under Lightning's Trainer (tests/lightning_reference.py), in its own process."""
    run_python(
        "-m",
        "tests.lightning_reference",
        "--save_dir",
        save_dir,
        *[item for key, value in settings.items() for item in (f"--{key}", value)],
    )


def reference_names(run_dir: Path) -> list[str]:
    """Every graph name of the reference training run (train list, then validation list)."""
    names = []
    for file_name in ("train.csv", "val.csv"):
        with open(run_dir / file_name, newline="") as handle:
            names += [row["MODEL"] for row in csv.DictReader(handle)]
    return names


def write_labels(path: Path, names: list[str], dockq: list[float] | None = None, column: str = "dockq") -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["MODEL", column] if dockq is not None else ["MODEL"])
        for index, name in enumerate(names):
            writer.writerow([name, dockq[index]] if dockq is not None else [name])
    return path


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def checkpoint_names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob("topo_*.ckpt"))


def max_weight_difference(ours: dict, theirs: dict) -> float:
    assert list(ours) == list(theirs), "state-dict keys differ"
    return max((ours[key].float() - theirs[key].float()).abs().max().item() for key in theirs)


def max_adam_difference(ours: dict, theirs: dict) -> float:
    """Largest difference between two Adam state dicts (after checking they hold the same entries)."""
    assert ours["param_groups"] == theirs["param_groups"]
    assert list(ours["state"]) == list(theirs["state"]), "Adam state for different parameters"
    worst = 0.0
    for index, entry in theirs["state"].items():
        assert list(ours["state"][index]) == list(entry)
        for name, value in entry.items():
            worst = max(worst, (ours["state"][index][name].double() - value.double()).abs().max().item())
    return worst


def read_metrics(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def normalised_callback_state(checkpoint: dict) -> dict:
    """The ModelCheckpoint state with paths reduced to file names and Lightning's `last.ckpt` read as the
    `topo_last.ckpt` the reproduction guide renames it to (scores as floats)."""
    ((key, state),) = checkpoint["callbacks"].items()

    def name(path: str) -> str:
        base = os.path.basename(path)
        return "topo_last.ckpt" if base == "last.ckpt" else base

    def score(value):
        return None if value is None else (str(value.dtype), float(value))

    return {
        "key": key,
        "order": list(state),
        "monitor": state["monitor"],
        "best_model_score": score(state["best_model_score"]),
        "best_model_path": name(state["best_model_path"]),
        "current_score": score(state["current_score"]),
        "best_k_models": [(name(path), score(value)) for path, value in state["best_k_models"].items()],
        "kth_best_model_path": name(state["kth_best_model_path"]),
        "kth_value": score(state["kth_value"]),
        "last_model_path": name(state["last_model_path"]),
    }
