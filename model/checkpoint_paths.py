"""Where the checkpoint is, and what its safetensors header says, without importing torch.

infer.py needs both before it starts featurising, and featurisation starts before torch is imported.
"""

from __future__ import annotations

import os
from pathlib import Path

CHECKPOINT_ENV = "TOPOQA_CHECKPOINT"


def reference_root() -> Path:
    """`TOPOQA_REFERENCE`, else `../shared/reference` beside the checkout."""
    reference = os.environ.get("TOPOQA_REFERENCE")
    return Path(reference) if reference else Path(__file__).resolve().parent.parent.parent / "shared" / "reference"


def default_checkpoint_path() -> Path | None:
    """`TOPOQA_CHECKPOINT`, else the published checkpoint in the reference folder when present."""
    configured = os.environ.get(CHECKPOINT_ENV)
    if configured:
        return Path(configured)
    candidate = reference_root() / "topoqa.ckpt.original"
    return candidate if candidate.exists() else None


def is_safetensors(path: str | os.PathLike) -> bool:
    """A safetensors file starts with its header length (8 bytes) and then the header's JSON."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def safetensors_metadata(path: str | os.PathLike) -> dict[str, str] | None:
    """The metadata of a safetensors file; None for any other (or unreadable) file. Reads the header only."""
    from safetensors import SafetensorError, safe_open

    try:
        if not is_safetensors(path):
            return None
        with safe_open(path, framework="np") as handle:
            return dict(handle.metadata() or {})
    except (OSError, SafetensorError, ValueError):
        return None
