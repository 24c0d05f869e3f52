"""Content-hash cache of featurised complexes: unchanged input -> the stored graph (or unscorable reason).

The key covers the file's bytes, the edge geometry, the graph format version, the cache layout, the
featurisation source code and the versions of the tools whose numbers end up in the graph (GUDHI, numba, Biopython,
mkdssp), so any change to one of them recomputes. Graphs are stored as NumPy `.npz` archives, so that worker
processes read and write them without importing torch. Entries are written atomically; a damaged entry is
ignored and recomputed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import zipfile
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import Bio
import gudhi
import numpy as np

from data.dssp import MKDSSP
from data.files import atomic_write, sha256_file
from data.graph_arrays import GRAPH_FORMAT_VERSION, GraphArrays
from data.topology import alpha_precision

CACHE_ENV = "TOPOQA_CACHE_DIR"
# Part of every key: a new layout (v1 held torch-saved `.pt` graphs) never reads entries of an old one.
CACHE_LAYOUT = "npz-2"
FEATURISATION_MODULES = (
    "structure", "interface", "topology", "alpha_complex", "dssp", "dssp_mmcif", "node_features", "edges", "featurize",
    "graph_arrays",
)


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
    tools = f"gudhi {gudhi.__version__} numba {version('numba')} biopython {Bio.__version__} {dssp_version.strip()}"
    digest.update(tools.encode())
    return digest.hexdigest()


def cache_key(path: str | os.PathLike, geometry: str) -> str:
    parts = (
        f"{sha256_file(path)} {geometry} v{GRAPH_FORMAT_VERSION} {CACHE_LAYOUT} {featurisation_fingerprint()}"
        f" alpha {alpha_precision()}"
    )
    return hashlib.sha256(parts.encode()).hexdigest()


class GraphCache:
    """Graphs (`<key>.npz`) and unscorable reasons (`<key>.reason`) under one folder, sharded by key prefix."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def _entry(self, key: str, suffix: str) -> Path:
        return self.folder / key[:2] / f"{key}{suffix}"

    def get(self, key: str, name: str = "") -> tuple[GraphArrays | None, str | None] | None:
        """(graph named `name`, None) or (None, reason) when cached; None when not (or when the entry is
        unreadable). The name is the caller's: the same bytes may arrive under another file name."""
        graph_file = self._entry(key, ".npz")
        if graph_file.exists():
            try:
                with np.load(graph_file, allow_pickle=False) as stored:
                    graph = GraphArrays(
                        name=name, x=stored["x"], edge_index=stored["edge_index"], edge_attr=stored["edge_attr"],
                        geometry=str(stored["geometry"]), feature_version=int(stored["feature_version"]),
                    )
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                return None
            if graph.x.dtype != np.float32 or graph.edge_index.dtype != np.int64 or graph.edge_attr.dtype != np.float32:
                return None
            return graph, None
        reason_file = self._entry(key, ".reason")
        if reason_file.exists():
            try:
                return None, reason_file.read_text().strip()
            except OSError:
                return None
        return None

    def put_graph(self, key: str, graph: GraphArrays) -> None:
        def write(target: Path) -> None:
            with open(target, "wb") as handle:
                np.savez(
                    handle, x=graph.x, edge_index=graph.edge_index, edge_attr=graph.edge_attr,
                    geometry=np.str_(graph.geometry), feature_version=np.int64(graph.feature_version),
                )

        atomic_write(self._entry(key, ".npz"), write, overwrite=True)

    def put_reason(self, key: str, reason: str) -> None:
        atomic_write(self._entry(key, ".reason"), lambda target: target.write_text(reason + "\n"), overwrite=True)
