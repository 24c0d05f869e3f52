"""Reading and writing TopoQA weights: Lightning `.ckpt` files and safetensors.

Nothing here executes code from a file: `.ckpt` files are read with
`torch.load(weights_only=True)`, safetensors needs no pickle at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from model.topoqa import HEADS, HIDDEN, TopoQA

SAFETENSORS_FORMAT_VERSION = "1"
# The Lightning release whose checkpoint layout we write (the recorded reference run's).
LIGHTNING_VERSION = "2.6.6"
CHECKPOINT_ENV = "TOPOQA_CHECKPOINT"


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


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=1)
def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the network's state dict, in creation order."""
    # On the meta device: building on the CPU would draw from the global RNG and change a training run.
    with torch.device("meta"):
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


def _is_safetensors(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read weights from a Lightning `.ckpt`, a torch-saved state dict, or safetensors."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: file not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: file is empty")
    if _is_safetensors(path):
        try:
            with safe_open(path, framework="pt") as handle:
                metadata = dict(handle.metadata() or {})
                state_dict = {key: handle.get_tensor(key) for key in handle.keys()}
        except (SafetensorError, OSError, ValueError) as error:
            raise CheckpointError(f"{path}: unreadable safetensors file ({error})") from None
        # safetensors stores keys sorted; restore the network's order.
        order = {key: index for index, key in enumerate(expected_shapes())}
        state_dict = dict(sorted(state_dict.items(), key=lambda item: order.get(item[0], len(order))))
        check_state_dict(state_dict, path)
        return Checkpoint(path, "safetensors", state_dict, metadata)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - every unpickling failure means a bad file
        text = str(error).strip().splitlines()
        reason = text[0] if text else type(error).__name__
        if "Weights only load failed" in str(error) or "Unsupported global" in str(error):
            reason = "refused: it references Python objects that are not plain weights (possible code execution)"
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason})") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        check_state_dict(loaded["state_dict"], path)
        return Checkpoint(path, "lightning", dict(loaded["state_dict"]), lightning=loaded)
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


def _atomic_write(path: Path, write: Any, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (use --overwrite to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
    _atomic_write(path, lambda target: save_file(tensors, target, metadata=full_metadata), overwrite)


def write_lightning(path: str | os.PathLike, checkpoint: dict[str, Any], overwrite: bool = False) -> None:
    """torch.save a Lightning-layout dict atomically."""
    path = Path(path)
    check_state_dict(checkpoint["state_dict"], path)
    _atomic_write(path, lambda target: torch.save(checkpoint, target), overwrite)


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
) -> dict[str, Any]:
    """A dict in the layout Lightning's `Trainer.save_checkpoint` writes (keys in its order)."""
    return {
        "epoch": epoch,
        "global_step": global_step,
        "pytorch-lightning_version": LIGHTNING_VERSION,
        "state_dict": {key: value.detach().cpu() for key, value in state_dict.items()},
        "loops": loops,
        "callbacks": callbacks or {},
        "optimizer_states": [optimizer_state] if optimizer_state is not None else [],
        "lr_schedulers": [],
    }


def default_checkpoint_path() -> Path | None:
    """`TOPOQA_CHECKPOINT`, else the published checkpoint in the reference folder when present."""
    configured = os.environ.get(CHECKPOINT_ENV)
    if configured:
        return Path(configured)
    reference = os.environ.get("TOPOQA_REFERENCE")
    root = Path(reference) if reference else Path(__file__).resolve().parent.parent.parent / "shared" / "reference"
    candidate = root / "topoqa.ckpt.original"
    return candidate if candidate.exists() else None
