"""Reading and writing TopoQA weights: Lightning `.ckpt` files and safetensors.

Nothing here executes code from a file: `.ckpt` files are read with
`torch.load(weights_only=True)`, safetensors needs no pickle at all.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from data.files import atomic_write
from data.graph_arrays import EDGE_FEATURES, NODE_FEATURES
from model.checkpoint_paths import is_safetensors
from model.topoqa import HEADS, HIDDEN, TopoQA

SAFETENSORS_FORMAT_VERSION = "1"
TRAINING_STATE_FORMAT = "topoqa-training-state"
TRAINING_STATE_FORMAT_VERSION = "1"
# Top-level key of a Lightning dict that carries our safetensors metadata (e.g. "geometry"),
# which the Lightning layout has no other place for. Lightning ignores unknown keys.
LIGHTNING_METADATA_KEY = "topoqa_metadata"
# The Lightning release whose checkpoint layout we write (the recorded reference run's).
LIGHTNING_VERSION = "2.6.6"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


@dataclass
class Checkpoint:
    """Weights read from either format, with whatever else the file carried."""

    path: Path
    format: str  # "lightning", "state_dict" (a bare torch-saved dict) or "safetensors"
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, str] = field(default_factory=dict)
    lightning: dict[str, Any] | None = None  # the whole Lightning dict, when the file is one

    @property
    def epoch(self) -> int | None:
        if self.lightning is not None and "epoch" in self.lightning:
            return int(self.lightning["epoch"])
        return int(self.metadata["epoch"]) if "epoch" in self.metadata else None

    @property
    def global_step(self) -> int | None:
        if self.lightning is not None and "global_step" in self.lightning:
            return int(self.lightning["global_step"])
        return int(self.metadata["global_step"]) if "global_step" in self.metadata else None


@lru_cache(maxsize=1)
def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the network's state dict, in creation order."""
    # Building draws random numbers: on the CPU, with the stream restored afterwards, or a mid-run check would
    # change a training run. (Not the meta device: its first use imports ~1 s of modules.)
    with torch.device("cpu"), torch.random.fork_rng(devices=[]):
        network = TopoQA()
    return {key: tuple(value.shape) for key, value in network.state_dict().items()}


def architecture_metadata() -> dict[str, str]:
    widths = {"node_features": str(NODE_FEATURES), "edge_features": str(EDGE_FEATURES)}
    return {"hidden": str(HIDDEN), "heads": str(HEADS), **widths}


def check_state_dict(state_dict: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Raise CheckpointError unless keys and shapes are exactly the network's."""
    expected = expected_shapes()
    missing = [key for key in expected if key not in state_dict]
    extra = [key for key in state_dict if key not in expected]
    for problem, keys in (("missing key", missing), ("unexpected key", extra)):
        if keys:
            more = f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
            raise CheckpointError(f"{path}: {problem} {keys[0]}{more}")
    for key, shape in expected.items():
        tensor = state_dict[key]
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{path}: key {key} is a {type(tensor).__name__}, not a tensor")
        if tuple(tensor.shape) != shape:
            raise CheckpointError(
                f"{path}: key {key} has shape {list(tensor.shape)}, expected {list(shape)}"
                " (a different architecture, e.g. another number of attention heads?)"
            )


def _load_failure(error: Exception) -> str:
    """One line saying why `torch.load(weights_only=True)` rejected a file."""
    text = str(error)
    blocked = re.search(r"GLOBAL ([\w.]+)", text)
    if blocked:
        return (
            f"refused to load: it asks to import {blocked.group(1)}, which could run code;"
            " only plain tensors and containers are accepted"
        )
    if "central directory" in text or "truncated" in text or isinstance(error, EOFError):
        return "not a readable checkpoint (truncated or corrupted)"
    if "Weights only load failed" in text or isinstance(error, KeyError):
        return "not a PyTorch checkpoint (unrecognised or unsupported content)"
    first_line = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return f"not a readable checkpoint ({first_line})"


def read_safetensors_file(path: Path, kind: str) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """(metadata, tensors) of a safetensors file; a damaged file is one CheckpointError naming it."""
    try:
        with safe_open(path, framework="pt") as handle:
            return dict(handle.metadata() or {}), {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: unreadable {kind}, truncated or corrupted ({error})") from None


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read weights from a Lightning `.ckpt`, a torch-saved state dict, or safetensors."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: file not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: file is empty")
    if is_safetensors(path):
        metadata, state_dict = read_safetensors_file(path, "safetensors file")
        if metadata.get("format") == TRAINING_STATE_FORMAT:
            weights = metadata.get("weights_file", "its weights file")
            raise CheckpointError(f"{path}: is a training-state companion, not weights: use {weights}")
        # safetensors stores keys sorted; restore the network's order.
        order = {key: index for index, key in enumerate(expected_shapes())}
        state_dict = dict(sorted(state_dict.items(), key=lambda item: order.get(item[0], len(order))))
        check_state_dict(state_dict, path)
        return Checkpoint(path, "safetensors", state_dict, metadata)
    try:
        with warnings.catch_warnings():
            # e.g. "Detected pickle protocol 4": the load fails or succeeds on its own merits.
            warnings.simplefilter("ignore")
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - every unpickling failure means a bad file
        raise CheckpointError(f"{path}: {_load_failure(error)}") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        check_state_dict(loaded["state_dict"], path)
        carried = loaded.get(LIGHTNING_METADATA_KEY)
        metadata = {str(k): str(v) for k, v in carried.items()} if isinstance(carried, dict) else {}
        return Checkpoint(path, "lightning", dict(loaded["state_dict"]), metadata, lightning=loaded)
    if isinstance(loaded, dict) and loaded and all(isinstance(value, torch.Tensor) for value in loaded.values()):
        check_state_dict(loaded, path)
        return Checkpoint(path, "state_dict", dict(loaded))
    raise CheckpointError(f"{path}: not a TopoQA checkpoint (no state_dict inside)")


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> TopoQA:
    """Build the network and load weights from either format, strictly, in eval mode."""
    checkpoint = read_checkpoint(path)
    model = TopoQA()
    model.load_state_dict(checkpoint.state_dict, strict=True)
    return model.to(device).eval()


def write_safetensors(
    path: str | os.PathLike,
    state_dict: dict[str, torch.Tensor],
    metadata: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> None:
    """Write every state-dict tensor plus string metadata (format version, architecture)."""
    path = Path(path)
    check_state_dict(state_dict, path)
    full_metadata = {"format": "topoqa-safetensors", "format_version": SAFETENSORS_FORMAT_VERSION}
    full_metadata.update(architecture_metadata())
    for key, value in (metadata or {}).items():
        full_metadata[key] = value if isinstance(value, str) else json.dumps(value)
    tensors = {key: value.detach().cpu().contiguous() for key, value in state_dict.items()}
    atomic_write(path, lambda target: save_file(tensors, target, metadata=full_metadata), overwrite)


def write_lightning(path: str | os.PathLike, checkpoint: dict[str, Any], overwrite: bool = False) -> None:
    """torch.save a Lightning-layout dict atomically."""
    path = Path(path)
    check_state_dict(checkpoint["state_dict"], path)
    atomic_write(path, lambda target: torch.save(checkpoint, target), overwrite)
