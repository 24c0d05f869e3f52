"""The Lightning checkpoint layout: the `loops` and top-level entries Lightning's Trainer writes, and the
training-state companion that carries everything of a Lightning dict but its weights beside a safetensors file.

`model.checkpoint` reads and writes the files; this module builds and takes apart what is inside them.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from data.files import atomic_write, sha256_file
from model.checkpoint import (
    LIGHTNING_METADATA_KEY,
    LIGHTNING_VERSION,
    TRAINING_STATE_FORMAT,
    TRAINING_STATE_FORMAT_VERSION,
    Checkpoint,
    CheckpointError,
    read_safetensors_file,
)


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
