"""Comparing a checkpoint with a reference: per-tensor weight differences and predictions on a graph set."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor
from torch_geometric.data import Data

from data.graph_arrays import EDGE_FEATURES, NODE_FEATURES
from model.graph_io import GraphFileError, load_graph


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


def graph_problem(graph: Data) -> str | None:
    """Why a graph cannot be scored by the network, or None when it can."""
    x, edge_index, edge_attr = (getattr(graph, name, None) for name in ("x", "edge_index", "edge_attr"))
    for name, value in (("x", x), ("edge_index", edge_index), ("edge_attr", edge_attr)):
        if not isinstance(value, Tensor):
            return f"has no tensor {name}"
    if x.dim() != 2 or x.shape[1] != NODE_FEATURES or x.shape[0] == 0 or x.dtype != torch.float32:
        return f"x is {x.dtype} {list(x.shape)}, expected float32 [N>0, {NODE_FEATURES}]"
    if edge_index.dim() != 2 or edge_index.shape[0] != 2 or edge_index.dtype != torch.int64:
        return f"edge_index is {edge_index.dtype} {list(edge_index.shape)}, expected int64 [2, E]"
    edges = edge_index.shape[1]
    if edge_attr.dim() != 2 or list(edge_attr.shape) != [edges, EDGE_FEATURES] or edge_attr.dtype != torch.float32:
        return f"edge_attr is {edge_attr.dtype} {list(edge_attr.shape)}, expected float32 [{edges}, {EDGE_FEATURES}]"
    if edges and (int(edge_index.min()) < 0 or int(edge_index.max()) >= x.shape[0]):
        return f"edge_index refers to nodes outside 0..{x.shape[0] - 1}"
    return None


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
        problem = graph_problem(graph)
        if problem:
            skipped.append(f"{path}: {problem}; skipped")
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
