"""Reading and writing TopoQA weights: Lightning `.ckpt` files and safetensors.

Nothing here executes code from a file: `.ckpt` files are read with
`torch.load(weights_only=True)`, safetensors needs no pickle at all.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from data.files import atomic_write, sha256_file
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
    return {"hidden": str(HIDDEN), "heads": str(HEADS), "node_features": "172", "edge_features": "11"}


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


def _progress(
    count: int, *, started: bool = True, processed: bool = True, completed: int | None = None
) -> dict[str, int]:
    done = count if completed is None else completed
    entry = {"ready": count, "completed": done}
    if started:
        entry["started"] = count
    if processed:
        entry["processed"] = count
    return entry


def lightning_loops(
    epoch: int,
    global_step: int,
    train_batches_per_epoch: int,
    steps_in_last_epoch: int,
    val_batches: int,
) -> dict[str, Any]:
    """The `loops` entry Lightning writes from a ModelCheckpoint at the end of validation in `epoch`."""
    batches_total = (epoch + 1) * train_batches_per_epoch
    idle_loop = {
        "state_dict": {},
        "batch_progress": {"total": _progress(0), "current": _progress(0)},
    }
    validate_loop = {**idle_loop, "batch_progress": {**idle_loop["batch_progress"], "is_last_batch": False}}
    return {
        "fit_loop": {
            "state_dict": {},
            "epoch_loop.state_dict": {"_batches_that_stepped": global_step},
            "epoch_loop.batch_progress": {
                "total": _progress(batches_total),
                "current": _progress(train_batches_per_epoch),
                "is_last_batch": True,
            },
            "epoch_loop.scheduler_progress": {
                "total": _progress(0, started=False, processed=False),
                "current": _progress(0, started=False, processed=False),
            },
            "epoch_loop.automatic_optimization.state_dict": {},
            "epoch_loop.automatic_optimization.optim_progress": {
                "optimizer": {
                    "step": {
                        "total": _progress(global_step, started=False, processed=False),
                        "current": _progress(steps_in_last_epoch, started=False, processed=False),
                    },
                    "zero_grad": {
                        "total": _progress(global_step, processed=False),
                        "current": _progress(steps_in_last_epoch, processed=False),
                    },
                }
            },
            "epoch_loop.manual_optimization.state_dict": {},
            "epoch_loop.manual_optimization.optim_step_progress": {
                "total": _progress(0, started=False, processed=False),
                "current": _progress(0, started=False, processed=False),
            },
            "epoch_loop.val_loop.state_dict": {},
            "epoch_loop.val_loop.batch_progress": {
                "total": _progress(val_batches),
                "current": _progress(val_batches),
                "is_last_batch": True,
            },
            "epoch_progress": {
                "total": _progress(epoch + 1, completed=epoch),
                "current": _progress(epoch + 1, completed=epoch),
            },
        },
        "validate_loop": validate_loop,
        "test_loop": validate_loop,
        "predict_loop": idle_loop,
    }


def lightning_checkpoint(
    state_dict: dict[str, torch.Tensor],
    *,
    epoch: int,
    global_step: int,
    loops: dict[str, Any],
    callbacks: dict[str, Any] | None = None,
    optimizer_state: dict[str, Any] | None = None,
    lightning_version: str = LIGHTNING_VERSION,
) -> dict[str, Any]:
    """A dict in the layout Lightning's `Trainer.save_checkpoint` writes (keys in its order).

    Without `optimizer_state`, `optimizer_states` is an empty list: Lightning then resumes
    with a freshly initialised optimizer (checked with pytorch-lightning 2.6.6).
    """
    return {
        "epoch": epoch,
        "global_step": global_step,
        "pytorch-lightning_version": lightning_version,
        "state_dict": OrderedDict((key, value.detach().cpu()) for key, value in state_dict.items()),
        "loops": loops,
        "callbacks": callbacks or {},
        "optimizer_states": [optimizer_state] if optimizer_state is not None else [],
        "lr_schedulers": [],
    }


def lightning_loops_untrained() -> dict[str, Any]:
    """The `loops` entry of a run that has not trained yet: Lightning resumes it at epoch 0."""
    loops = lightning_loops(0, 0, 0, 0, 0)
    fit_loop = loops["fit_loop"]
    fit_loop["epoch_progress"] = {"total": _progress(0), "current": _progress(0)}
    fit_loop["epoch_loop.batch_progress"]["is_last_batch"] = False
    fit_loop["epoch_loop.val_loop.batch_progress"]["is_last_batch"] = False
    return loops


# Safetensors metadata keys that describe the file itself or are rebuilt from the Lightning
# layout; every other key (e.g. "geometry") rides in the Lightning dict under LIGHTNING_METADATA_KEY.
_STRUCTURAL_METADATA = {
    "format", "format_version", "hidden", "heads", "node_features", "edge_features", "epoch", "global_step",
    "pytorch-lightning_version", "lightning_loops", "training_state", "source_file", "source_format",
    "source_sha256",
}


def lightning_metadata(lightning: dict[str, Any]) -> dict[str, str]:
    """Safetensors metadata recording a Lightning dict's epoch, step, version and loops (not its tensors)."""
    carried = lightning.get(LIGHTNING_METADATA_KEY)
    carried = carried if isinstance(carried, dict) else {}
    metadata = {str(k): str(v) for k, v in carried.items() if str(k) not in _STRUCTURAL_METADATA}
    for key in ("epoch", "global_step", "pytorch-lightning_version"):
        if key in lightning:
            metadata[key] = str(lightning[key])
    loops = lightning.get("loops")
    if loops is not None:
        try:
            encoded = json.dumps(loops, sort_keys=False)
            if json.loads(encoded) == loops:
                metadata["lightning_loops"] = encoded
        except (TypeError, ValueError):
            pass  # loops with non-JSON values are only carried by the training-state file
    return metadata


def lightning_from_weights(checkpoint: Checkpoint) -> dict[str, Any]:
    """A weights-only Lightning dict: no optimizer or callback state, so Lightning restarts those fresh.

    Epoch, global step and loops come from the file's metadata when it has them; without an
    epoch the result is an untrained run (epoch 0, step 0) that starts with these weights.
    """
    metadata = checkpoint.metadata
    epoch, global_step = checkpoint.epoch, checkpoint.global_step
    if "lightning_loops" in metadata:
        try:
            loops = json.loads(metadata["lightning_loops"])
        except ValueError as error:
            raise CheckpointError(f"{checkpoint.path}: malformed lightning_loops metadata ({error})") from None
    elif epoch is not None:
        # Batch counts are unknown; Lightning resumes from an epoch end without reading them.
        loops = lightning_loops(epoch, global_step or 0, 0, 0, 0)
    else:
        loops = lightning_loops_untrained()
    lightning = lightning_checkpoint(
        checkpoint.state_dict,
        epoch=epoch or 0,
        global_step=global_step or 0,
        loops=loops,
        lightning_version=metadata.get("pytorch-lightning_version", LIGHTNING_VERSION),
    )
    carried = {key: value for key, value in metadata.items() if key not in _STRUCTURAL_METADATA}
    if carried:
        lightning[LIGHTNING_METADATA_KEY] = carried
    return lightning


# The training-state companion: everything of a Lightning dict except the weights (optimizer
# state, callbacks, loops, ...). Tensors are stored as safetensors; the nesting as JSON in the
# metadata, with tagged objects for what JSON lacks (tuples, non-string keys, tensors).
_TENSOR, _DICT, _ORDERED, _TUPLE, _WEIGHTS = "tensor", "dict", "ordered_dict", "tuple", "weights"


def training_state_path(weights_path: str | os.PathLike) -> Path:
    """Where the companion of `x.safetensors` lives: `x.training.safetensors` beside it."""
    weights_path = Path(weights_path)
    return weights_path.with_name(f"{weights_path.stem}.training.safetensors")


def _encode(value: Any, where: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        name = f"tensor.{len(tensors)}"
        # clone: safetensors refuses tensors that share memory.
        tensors[name] = value.detach().cpu().clone().contiguous()
        return {_TENSOR: name}
    # Exact types only: a subclass (torch.Size is a tuple) would come back as its base class.
    if type(value) in (dict, OrderedDict):
        tag = _ORDERED if type(value) is OrderedDict else _DICT
        pairs = value.items()
        return {tag: [[_encode(key, where, tensors), _encode(item, f"{where}/{key}", tensors)] for key, item in pairs]}
    if type(value) is tuple:
        return {_TUPLE: [_encode(item, f"{where}/{index}", tensors) for index, item in enumerate(value)]}
    if type(value) is list:
        return [_encode(item, f"{where}/{index}", tensors) for index, item in enumerate(value)]
    if value is None or type(value) in (bool, int, float, str):
        return value
    raise CheckpointError(f"{where}: holds a {type(value).__name__}, which a training-state file cannot carry")


def _decode(value: Any, tensors: dict[str, torch.Tensor], weights: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(item, tensors, weights) for item in value]
    if not isinstance(value, dict):
        return value
    (tag, content), = value.items()
    if tag == _TENSOR:
        return tensors[content]
    if tag == _WEIGHTS:
        return OrderedDict(weights) if content == "OrderedDict" else dict(weights)
    if tag == _TUPLE:
        return tuple(_decode(item, tensors, weights) for item in content)
    if tag in (_DICT, _ORDERED):
        pairs = [(_decode(key, tensors, weights), _decode(item, tensors, weights)) for key, item in content]
        return OrderedDict(pairs) if tag == _ORDERED else dict(pairs)
    raise ValueError(f"unknown tag {tag}")


def write_training_state(
    path: str | os.PathLike, lightning: dict[str, Any], weights_file: str | os.PathLike, overwrite: bool = False
) -> None:
    """Write everything of a Lightning dict except `state_dict`, tied to the weights file by its sha256."""
    path, weights_file = Path(path), Path(weights_file)
    tensors: dict[str, torch.Tensor] = {}
    top_level = []
    for key, value in lightning.items():
        if key == "state_dict":
            encoded = {_WEIGHTS: "OrderedDict" if isinstance(value, OrderedDict) else "dict"}
        else:
            encoded = _encode(value, f"{path}: {key}", tensors)
        top_level.append([key, encoded])
    metadata = {
        "format": TRAINING_STATE_FORMAT,
        "format_version": TRAINING_STATE_FORMAT_VERSION,
        "weights_file": weights_file.name,
        "weights_sha256": sha256_file(weights_file),
        "structure": json.dumps({_DICT: top_level}),
    }
    atomic_write(path, lambda target: save_file(tensors, target, metadata=metadata), overwrite)


def read_training_state(path: str | os.PathLike, weights: Checkpoint | None) -> dict[str, Any]:
    """The full Lightning dict: the companion's training state around `weights`' state dict.

    Refuses a companion written for another weights file (sha256 recorded at conversion).
    With `weights=None` (inspection) nothing is paired and `state_dict` comes back empty.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: training-state file not found")
    metadata, tensors = read_safetensors_file(path, "training-state file")
    if metadata.get("format") != TRAINING_STATE_FORMAT:
        raise CheckpointError(f"{path}: not a training-state file (format {metadata.get('format')!r})")
    if metadata.get("format_version") != TRAINING_STATE_FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported training-state format version {metadata.get('format_version')}")
    expected = sha256_file(weights.path) if weights is not None else metadata.get("weights_sha256")
    if metadata.get("weights_sha256") != expected:
        raise CheckpointError(
            f"{path}: belongs to another weights file (recorded sha256 {metadata.get('weights_sha256', '?')[:16]}..., "
            f"{weights.path} has {expected[:16]}...)"
        )
    try:
        return _decode(json.loads(metadata["structure"]), tensors, weights.state_dict if weights is not None else {})
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: malformed training-state structure ({error})") from None
