"""Graph files (`<MODEL>.pt`): PyG `Data` pickles, loaded without running pickled code."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch_geometric.data import Data
from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
from torch_geometric.data.storage import GlobalStorage

from data.files import atomic_write
from data.graph_arrays import GRAPH_FORMAT_VERSION

__all__ = ["GRAPH_FORMAT_VERSION", "GraphFileError", "load_graph", "save_graph"]

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
