"""Training graphs held in memory, read once from `<graph_dir>/<MODEL>.pt` and checked before training starts."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterable
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torch_geometric.data import Data
from tqdm.auto import tqdm

from data.labels import LabelFileError, format_problems, read_labels
from model.graph_io import GraphFileError, graph_problems, load_graph


class TrainingDataError(ValueError):
    """Bad training input; `problems` lists every offender (one line each)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(format_problems(problems, "the training data"))


def read_label_file(path: str | os.PathLike) -> list[tuple[str, float | None]]:
    """(MODEL, DockQ or None) pairs in file order: the DockQ column is optional (graphs may carry their own y)."""
    try:
        return [(label.model, label.value) for label in read_labels(path, value_required=False)]
    except LabelFileError as error:
        raise TrainingDataError(error.problems) from None


def _label(graph: Data, csv_dockq: float | None) -> tuple[torch.Tensor | None, str | None]:
    """The graph's own float32 `y` when present (never a rounded CSV value), else the CSV's DockQ."""
    y = getattr(graph, "y", None)
    if isinstance(y, torch.Tensor):
        if y.numel() != 1:
            return None, f"y has {y.numel()} values, expected 1"
        label = y.reshape(1).to(torch.float32)
        source = "y"
    elif csv_dockq is not None:
        label = torch.tensor([csv_dockq], dtype=torch.float32)
        source = "DockQ column"
    else:
        return None, "no label: the graph has no y and the label file no DockQ value"
    value = float(label)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        return None, f"label ({source}) {value} is not a DockQ in [0, 1]"
    return label, None


class GraphSet(Dataset):
    """Graphs in label-file order, each a `Data(x, edge_index, edge_attr, y, sample_id)` held in memory."""

    def __init__(self, names: list[str], graphs: list[Data], geometries: list[str | None] | None = None) -> None:
        self.names = names
        self.graphs = graphs
        # Edge geometry the featurizer recorded ("xyy": the reference's defect, "xyz"); None in legacy files.
        self.geometries = geometries if geometries is not None else [None] * len(graphs)

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, index: int) -> Data:
        return self.graphs[index]

    def fingerprint(self) -> str:
        """sha256 over names and labels in order: identifies the set in resume checks."""
        digest = hashlib.sha256()
        for name, graph in zip(self.names, self.graphs, strict=True):
            digest.update(name.encode() + b"\0" + graph.y.numpy().tobytes())
        return digest.hexdigest()

    @classmethod
    def load(
        cls,
        graph_dir: str | os.PathLike,
        label_file: str | os.PathLike,
        description: str = "graphs",
        progress: bool = True,
    ) -> GraphSet:
        """Read every listed graph once; raise TrainingDataError listing all offenders."""
        rows = read_label_file(label_file)
        graph_dir = Path(graph_dir)
        if not graph_dir.is_dir():
            raise TrainingDataError([f"{graph_dir}: graph folder not found"])
        names, graphs, geometries, problems = [], [], [], []
        show = None if progress else True  # tqdm: None = only on a terminal
        for name, csv_dockq in tqdm(rows, desc=f"loading {description}", unit="graph", disable=show):
            path = graph_dir / f"{name}.pt"
            try:
                graph = load_graph(path)
            except GraphFileError as error:
                problems.append(str(error))
                continue
            issues = graph_problems(graph)
            label, label_issue = _label(graph, csv_dockq)
            if label_issue:
                issues.append(label_issue)
            if issues:
                problems.extend(f"{path}: {issue}" for issue in issues)
                continue
            # Not named '*index*': PyG offsets such attributes by the node count when batching.
            index = torch.tensor([len(graphs)])
            graphs.append(
                Data(x=graph.x, edge_index=graph.edge_index, edge_attr=graph.edge_attr, y=label, sample_id=index)
            )
            names.append(name)
            geometry = getattr(graph, "geometry", None)
            geometries.append(geometry if isinstance(geometry, str) else None)
        if problems:
            raise TrainingDataError(problems)
        return cls(names, graphs, geometries)


def load_graph_sets(
    splits: Iterable[tuple[str, str | os.PathLike, str | os.PathLike]], progress: bool = True
) -> list[GraphSet]:
    """Load (description, graph_dir, label_file) splits; one TrainingDataError listing every split's offenders."""
    sets, problems = [], []
    for description, graph_dir, label_file in splits:
        try:
            sets.append(GraphSet.load(graph_dir, label_file, description, progress))
        except TrainingDataError as error:
            problems.extend(error.problems)
    if not problems:
        problems = mixed_geometry_problems(sets)
    if problems:
        raise TrainingDataError(problems)
    return sets


def mixed_geometry_problems(sets: list[GraphSet]) -> list[str]:
    """Graphs featurised with different edge geometries (xyy vs xyz) must not be trained together."""
    examples: dict[str, str] = {}
    for graph_set in sets:
        for name, geometry in zip(graph_set.names, graph_set.geometries, strict=True):
            examples.setdefault(geometry, name)
    known = {geometry: name for geometry, name in examples.items() if geometry is not None}
    if len(known) <= 1:
        return []
    listing = ", ".join(f"{geometry!r} (e.g. {name})" for geometry, name in sorted(known.items()))
    return [f"graphs were featurised with different edge geometries: {listing}; use one"]
