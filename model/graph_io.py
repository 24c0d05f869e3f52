"""Graph files (`<MODEL>.pt`): PyG `Data` pickles, loaded without running pickled code."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch_geometric.data import Data
from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
from torch_geometric.data.storage import GlobalStorage

from data.files import atomic_write
from data.graph_arrays import EDGE_FEATURES, GRAPH_FORMAT_VERSION, NODE_FEATURES

__all__ = ["GRAPH_FORMAT_VERSION", "GraphFileError", "graph_problems", "load_graph", "save_graph"]

# The only classes a graph file may reference besides tensors and builtins.
# Files written by PyG 2.5 (the reference training set) contain exactly these.
SAFE_GRAPH_CLASSES = [Data, DataEdgeAttr, DataTensorAttr, GlobalStorage]


class GraphFileError(ValueError):
    """A graph file that cannot be used; the message names the file and the problem."""


def load_graph(path: str | os.PathLike) -> Data:
    """Load a graph file with `weights_only=True` and an allow-list of PyG classes."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals(SAFE_GRAPH_CLASSES):
            graph = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise GraphFileError(f"{path}: file not found") from None
    except Exception as error:  # noqa: BLE001 - any unpickling failure is a bad file
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise GraphFileError(f"{path}: not a loadable graph file ({first_line})") from None
    if not isinstance(graph, Data):
        raise GraphFileError(f"{path}: holds a {type(graph).__name__}, not a torch_geometric Data graph")
    return graph


def save_graph(graph: Data, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Write a graph file atomically; refuse to replace an existing file unless asked."""
    atomic_write(path, lambda target: torch.save(graph, target), overwrite)


def graph_problems(graph: Data) -> list[str]:
    """What keeps the network from using a graph (empty when it is usable): missing tensors, wrong widths or
    dtypes, no nodes, NaN or infinite features, edges pointing outside the graph."""
    required = ("x", "edge_index", "edge_attr")
    missing = [key for key in required if not isinstance(getattr(graph, key, None), torch.Tensor)]
    if missing:
        return [f"missing {', '.join(missing)}"]
    x, edge_index, edge_attr = graph.x, graph.edge_index, graph.edge_attr
    problems = []
    if x.dim() != 2 or x.shape[1] != NODE_FEATURES:
        problems.append(f"x has shape {list(x.shape)}, expected [nodes, {NODE_FEATURES}]")
    elif x.shape[0] == 0:
        problems.append("no nodes")
    if edge_attr.dim() != 2 or edge_attr.shape[1] != EDGE_FEATURES:
        problems.append(f"edge_attr has shape {list(edge_attr.shape)}, expected [edges, {EDGE_FEATURES}]")
    for key, tensor in (("x", x), ("edge_attr", edge_attr)):
        if tensor.dtype != torch.float32:
            problems.append(f"{key} is {tensor.dtype}, expected torch.float32")
        elif not torch.isfinite(tensor).all():
            problems.append(f"{key} contains NaN or infinite values")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2 or edge_index.dtype != torch.int64:
        problems.append(
            f"edge_index has shape {list(edge_index.shape)} and dtype {edge_index.dtype}, expected [2, edges] int64"
        )
    else:
        if edge_attr.dim() == 2 and edge_attr.shape[0] != edge_index.shape[1]:
            problems.append(f"{edge_index.shape[1]} edges but {edge_attr.shape[0]} edge_attr rows")
        if edge_index.numel() and (edge_index.min() < 0 or edge_index.max() >= x.shape[0]):
            problems.append(f"edge_index refers to nodes outside 0..{x.shape[0] - 1}")
    return problems
