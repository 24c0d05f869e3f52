"""Comparing a checkpoint with a reference: per-tensor weight differences and predictions on a graph set."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor
from torch_geometric.data import Data

from model.graph_io import GraphFileError, graph_problems, load_graph


class GraphSetError(ValueError):
    """No usable graph set; the message names the folder and the problem."""


@dataclass
class NamedGraph:
    name: str
    graph: Data


def tensor_differences(candidate: dict[str, Tensor], reference: dict[str, Tensor]) -> dict[str, float]:
    """Max absolute difference per state-dict key, in float64 (NaN when a value is not finite)."""
    differences = {}
    for key, expected in reference.items():
        gap = (candidate[key].double() - expected.double()).abs()
        differences[key] = float(gap.max()) if gap.numel() else 0.0
    return differences


def _read_graph(path: Path) -> Data:
    if path.suffix == ".pt":
        return load_graph(path)
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise GraphFileError(f"{path}: unreadable safetensors graph ({error})") from None
    return Data(**{key: tensors[key] for key in ("x", "edge_index", "edge_attr") if key in tensors})


def load_graph_folder(folder: str | os.PathLike) -> tuple[list[NamedGraph], list[str]]:
    """Graphs of a folder, in name order, and one line per file that was skipped.

    Accepts `<MODEL>.pt` graph files, `<MODEL>.safetensors` files holding x, edge_index and
    edge_attr, and `<MODEL>/graph.safetensors` (the layout of the reference golden folder).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise GraphSetError(f"{folder}: graph folder not found")
    candidates: dict[str, Path] = {}
    skipped = []
    paths = [*folder.glob("*.pt"), *folder.glob("*.safetensors"), *folder.glob("*/graph.safetensors")]
    for path in sorted(paths):
        name = path.parent.name if path.name == "graph.safetensors" and path.parent != folder else path.stem
        if name in candidates:
            skipped.append(f"{path}: skipped, another file already provides graph {name} ({candidates[name]})")
            continue
        candidates[name] = path
    graphs = []
    for name, path in sorted(candidates.items()):
        try:
            graph = _read_graph(path)
        except GraphFileError as error:
            skipped.append(f"{error}; skipped")
            continue
        problems = graph_problems(graph)
        if problems:
            skipped.append(f"{path}: {'; '.join(problems)}; skipped")
            continue
        graphs.append(NamedGraph(name, graph))
    if not graphs:
        raise GraphSetError(f"{folder}: no usable graphs (looked for *.pt, *.safetensors, */graph.safetensors)")
    return graphs, skipped


def featurized_graphs(
    folder: str | os.PathLike, jobs: int, geometry: str = "xyy"
) -> tuple[list[NamedGraph], list[str]]:
    """Featurise every PDB file of a folder (in name order) with the project's featuriser."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GraphSetError(f"{folder}: complex folder not found")
    from data.featurize import PDB_SUFFIXES, featurize_many, find_complexes  # only here: slow to import

    paths = find_complexes(folder)
    if not paths:
        raise GraphSetError(f"{folder}: no PDB files found (looked for {', '.join(PDB_SUFFIXES)})")
    graphs, skipped = [], []
    for result in featurize_many(paths, geometry=geometry, jobs=jobs, cache_dir=None, progress=True):
        if result.graph is None:
            skipped.append(f"{result.name}: {result.reason}; skipped")
        else:
            graphs.append(NamedGraph(result.name, result.graph))
    if not graphs:
        raise GraphSetError(f"{folder}: none of the {len(paths)} complexes could be featurised")
    # Parallel featurisation may finish in any order; report in name order.
    return sorted(graphs, key=lambda item: item.name), sorted(skipped)
