"""Content-hash cache of featurised complexes: unchanged input -> the stored graph (or unscorable reason).

The key covers the file's bytes, the edge geometry, the graph format version, the featurisation source code
and the versions of the tools whose numbers end up in the graph (GUDHI, Biopython, mkdssp), so any change to
one of them recomputes. Entries are written atomically; a damaged entry is ignored and recomputed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from functools import lru_cache
from pathlib import Path

import Bio
import gudhi
from torch_geometric.data import Data

from data.dssp import MKDSSP
from data.graph_io import GRAPH_FORMAT_VERSION, GraphFileError, load_graph, save_graph
from model.checkpoint import sha256_file

CACHE_ENV = "TOPOQA_CACHE_DIR"
FEATURISATION_MODULES = ("structure", "interface", "topology", "dssp", "node_features", "edges", "featurize")


def default_cache_dir() -> Path:
    """`$TOPOQA_CACHE_DIR`, else `$XDG_CACHE_HOME/topoqa/graphs`, else `~/.cache/topoqa/graphs`."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "topoqa" / "graphs"


@lru_cache(maxsize=1)
def featurisation_fingerprint() -> str:
    """Changes whenever the featurisation code or a tool that shapes its numbers changes."""
    digest = hashlib.sha256()
    folder = Path(__file__).resolve().parent
    for module in FEATURISATION_MODULES:
        digest.update((folder / f"{module}.py").read_bytes())
    try:
        dssp_version = subprocess.run([MKDSSP, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        dssp_version = "mkdssp unavailable"
    digest.update(f"gudhi {gudhi.__version__} biopython {Bio.__version__} {dssp_version.strip()}".encode())
    return digest.hexdigest()


def cache_key(path: str | os.PathLike, geometry: str) -> str:
    parts = f"{sha256_file(path)} {geometry} v{GRAPH_FORMAT_VERSION} {featurisation_fingerprint()}"
    return hashlib.sha256(parts.encode()).hexdigest()


class GraphCache:
    """Graphs (`<key>.pt`) and unscorable reasons (`<key>.reason`) under one folder, sharded by key prefix."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def _entry(self, key: str, suffix: str) -> Path:
        return self.folder / key[:2] / f"{key}{suffix}"

    def get(self, key: str) -> tuple[Data | None, str | None] | None:
        """(graph, None) or (None, reason) when cached, None when not (or when the entry is unreadable)."""
        graph_file = self._entry(key, ".pt")
        if graph_file.exists():
            try:
                return load_graph(graph_file), None
            except GraphFileError:
                return None
        reason_file = self._entry(key, ".reason")
        if reason_file.exists():
            try:
                return None, reason_file.read_text().strip()
            except OSError:
                return None
        return None

    def put_graph(self, key: str, graph: Data) -> None:
        save_graph(graph, self._entry(key, ".pt"), overwrite=True)

    def put_reason(self, key: str, reason: str) -> None:
        target = self._entry(key, ".reason")
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temporary.write_text(reason + "\n")
        os.replace(temporary, target)
