"""Training settings: the reference script's flags, read from a YAML file and overridden on the command line."""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

PATH_KEYS = ("graph_dir", "train_label_file", "val_label_file", "save_dir")
# Settings that must not change when a run is resumed (num_epochs may grow; threads only affect exactness).
RESUME_FIXED_KEYS = (
    "attention_head",
    "pooling_type",
    "batch_size",
    "learning_rate",
    "accumulate_grad_batches",
    "seed",
    "deterministic",
)


@dataclass
class TrainConfig:
    """Defaults are the reference script's (the published model's production settings)."""

    graph_dir: str | None = None
    train_label_file: str | None = None
    val_label_file: str | None = None
    attention_head: int = 8
    pooling_type: str = "mean"
    batch_size: int = 16
    learning_rate: float = 0.005
    num_epochs: int = 200
    accumulate_grad_batches: int = 32
    seed: int = 222
    save_dir: str = "experiments"
    deterministic: bool = True
    num_threads: int = 1  # 1: bit-for-bit CPU parity with the reference; 0: torch's default
    num_sanity_val_steps: int = 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


HELP = {
    "graph_dir": "folder of <MODEL>.pt graph files",
    "train_label_file": "CSV with a MODEL column (optional DockQ column), training graphs in this order",
    "val_label_file": "CSV like --train_label_file, validation graphs",
    "attention_head": "attention heads (the network has 8)",
    "pooling_type": "graph readout (mean)",
    "batch_size": "graphs per batch",
    "learning_rate": "Adam learning rate",
    "num_epochs": "epochs to train",
    "accumulate_grad_batches": "batches per Adam step",
    "seed": "seed for Python, NumPy and torch",
    "save_dir": "run folder for checkpoints, metrics and reports",
    "deterministic": "deterministic algorithms and CUDA settings",
    "num_threads": "intra-op CPU threads; 1 reproduces the reference bit for bit, 0 keeps torch's default",
    "num_sanity_val_steps": "validation batches run once before training (no effect on the result)",
}


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One `--<name>` override per setting (defaults None, so only given flags override the YAML)."""
    parser.add_argument("--config", type=Path, help="YAML file of settings (paths in it are relative to the file)")
    for field in fields(TrainConfig):
        text = f"{HELP[field.name]} (default: {field.default})"
        if field.type in ("bool", bool):
            parser.add_argument(f"--{field.name}", action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            kind = {"int": int, "float": float}.get(str(field.type), str)
            parser.add_argument(f"--{field.name}", type=kind, default=None, help=text)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults < YAML < command line. YAML paths are relative to the YAML file, command-line paths to the cwd."""
    values: dict[str, Any] = {}
    known = {field.name for field in fields(TrainConfig)}
    if args.config is not None:
        loaded = yaml.safe_load(args.config.read_text()) or {}
        unknown = sorted(set(loaded) - known)
        if unknown:
            raise ValueError(
                f"{args.config}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        base = args.config.resolve().parent
        for key, value in loaded.items():
            if value is None:  # a setting left empty keeps its default (or must come from the command line)
                continue
            if key in PATH_KEYS:
                value = str(base / os.path.expanduser(str(value)))
            values[key] = value
    for key in known:
        override = getattr(args, key, None)
        if override is not None:
            values[key] = str(Path(override).expanduser()) if key in PATH_KEYS else override
    config = TrainConfig(**values)
    check_config(config)
    return config


def check_config(config: TrainConfig) -> None:
    missing = [key for key in ("graph_dir", "train_label_file", "val_label_file") if not getattr(config, key)]
    if missing:
        raise ValueError(f"missing setting(s): {', '.join(missing)} (pass --{missing[0]} or set it in the YAML)")
    if config.pooling_type != "mean":
        raise ValueError(f"pooling_type {config.pooling_type!r}: only 'mean' pooling exists in the published network")
    if config.attention_head != 8:
        raise ValueError(f"attention_head {config.attention_head}: the network and its checkpoint format use 8 heads")
    for key in ("batch_size", "num_epochs", "accumulate_grad_batches"):
        if getattr(config, key) < 1:
            raise ValueError(f"{key} must be at least 1, not {getattr(config, key)}")
    if not config.learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, not {config.learning_rate}")
    if config.num_threads < 0 or config.num_sanity_val_steps < 0:
        raise ValueError("num_threads and num_sanity_val_steps must not be negative")


def resume_mismatches(saved: dict[str, Any], config: TrainConfig) -> list[str]:
    """Settings that differ from the run being resumed, as 'key: saved -> now' lines."""
    current = config.to_dict()
    changed = [key for key in RESUME_FIXED_KEYS if saved.get(key) != current[key]]
    return [f"{key}: {saved.get(key)!r} -> {current[key]!r}" for key in changed]
