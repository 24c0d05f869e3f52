"""Training input: legacy and featurizer graph files, labels, and bad input refused before training."""

from __future__ import annotations

import csv
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from model.graph_io import load_graph, save_graph
from tests.conftest import need_reference
from tests.test_train_helpers import reference_names, run_train, write_labels
from training.batching import make_loader
from training.best_checkpoints import BestCheckpoints
from training.graph_sets import GraphSet, TrainingDataError, load_graph_sets, read_label_file
from training.synthetic_graphs import synthetic_graph, write_synthetic_set


def graph(nodes: int = 5, y: float | None = 0.5, node_features: int = 172) -> Data:
    generator = torch.Generator().manual_seed(nodes)
    data = Data(
        x=torch.rand(nodes, node_features, generator=generator),
        edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]),
        edge_attr=torch.rand(4, 11, generator=generator),
    )
    if y is not None:
        data.y = torch.tensor([y], dtype=torch.float32)
    return data


class WritesAFile:
    """A pickled object that would create a file when unpickled (the payload a graph file must not run)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_legacy_reference_graphs_load_with_their_float32_labels():
    run_dir = need_reference("training_run")
    graphs = GraphSet.load(run_dir / "graphs", run_dir / "val.csv", progress=False)
    names = reference_names(run_dir)[-len(graphs) :]
    assert graphs.names == names
    for name, item in zip(names[:5], graphs.graphs, strict=False):
        original = load_graph(run_dir / "graphs" / f"{name}.pt")
        assert torch.equal(item.y, original.y) and item.y.dtype == torch.float32
        assert torch.equal(item.x, original.x) and torch.equal(item.edge_index, original.edge_index)
    with open(run_dir / "val.csv", newline="") as handle:
        rounded = [float(row["dockq"]) for row in csv.DictReader(handle)]
    assert any(float(item.y) != value for item, value in zip(graphs.graphs, rounded, strict=True))


def featurizer_graph(nodes: int, geometry: str = "xyy") -> Data:
    """What data/featurize.py writes: no label, plus name, geometry and feature version."""
    data = graph(nodes, y=None)
    data.name, data.geometry, data.feature_version = f"complex{nodes}", geometry, 1
    return data


def test_featurizer_graphs_without_y_take_the_csv_dockq_column(tmp_path):
    save_graph(featurizer_graph(4), tmp_path / "a.pt")
    save_graph(graph(6, y=0.25), tmp_path / "b.pt")
    labels = write_labels(tmp_path / "labels.csv", ["a", "b"], [0.125, 0.9], column="DockQ")
    graphs = GraphSet.load(tmp_path, labels, progress=False)
    assert [float(item.y) for item in graphs.graphs] == [0.125, 0.25]  # the graph's own y wins when present
    assert graphs.geometries == ["xyy", None]
    assert read_label_file(labels) == [("a", 0.125), ("b", 0.9)]


def test_graphs_of_different_edge_geometries_are_not_mixed(tmp_path):
    save_graph(featurizer_graph(4, "xyy"), tmp_path / "a.pt")
    save_graph(featurizer_graph(5, "xyz"), tmp_path / "b.pt")
    train = write_labels(tmp_path / "train.csv", ["a"], [0.5])
    val = write_labels(tmp_path / "val.csv", ["b"], [0.5])
    with pytest.raises(TrainingDataError, match="different edge geometries: 'xyy' \\(e.g. a\\), 'xyz' \\(e.g. b\\)"):
        load_graph_sets([("train", tmp_path, train), ("val", tmp_path, val)], progress=False)


def test_graph_file_with_a_code_payload_is_refused(tmp_path):
    marker = tmp_path / "payload_ran"
    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump(WritesAFile(marker), handle)
    torch.save({"x": WritesAFile(marker)}, tmp_path / "evil_zip.pt")
    labels = write_labels(tmp_path / "labels.csv", ["evil", "evil_zip"], [0.5, 0.5])
    with pytest.raises(TrainingDataError) as error:
        GraphSet.load(tmp_path, labels, progress=False)
    assert len(error.value.problems) == 2
    assert all("not a loadable graph file" in problem for problem in error.value.problems)
    assert not marker.exists()


def test_bad_input_is_listed_in_one_message_before_training(tmp_path):
    graphs = tmp_path / "graphs"
    save_graph(graph(5), graphs / "good.pt")
    save_graph(graph(5, y=math.nan), graphs / "nan_label.pt")
    save_graph(graph(5, y=1.5), graphs / "too_high.pt")
    save_graph(graph(5, node_features=170), graphs / "narrow.pt")
    save_graph(graph(5, y=None), graphs / "unlabelled.pt")
    train = write_labels(tmp_path / "train.csv", ["good", "missing", "nan_label", "too_high", "narrow", "unlabelled"])
    val = write_labels(tmp_path / "val.csv", ["good", "also_missing"])
    save_dir = tmp_path / "run"
    result = run_train("--graph_dir", graphs, "--train_label_file", train, "--val_label_file", val,
                       "--save_dir", save_dir, check=False)  # fmt: skip
    assert result.returncode != 0
    message = result.stderr
    assert "6 problem(s)" in message and "nothing trained" in message
    for offender, problem in (
        ("missing.pt", "file not found"),
        ("also_missing.pt", "file not found"),
        ("nan_label.pt", "nan is not a DockQ"),
        ("too_high.pt", "1.5 is not a DockQ"),
        ("narrow.pt", "x has shape [5, 170], expected [nodes, 172]"),
        ("unlabelled.pt", "no label"),
    ):
        assert any(offender in line and problem in line for line in message.splitlines()), (offender, message)
    assert not list(save_dir.glob("*.ckpt"))


def test_label_file_problems(tmp_path):
    (tmp_path / "no_model.csv").write_text("NAME,dockq\na,0.5\n")
    (tmp_path / "duplicates.csv").write_text("model,DOCKQ\na,0.5\na,0.6\nb,x\n")
    with pytest.raises(TrainingDataError, match="no MODEL column"):
        read_label_file(tmp_path / "no_model.csv")
    with pytest.raises(TrainingDataError) as error:
        read_label_file(tmp_path / "duplicates.csv")
    assert any("'x' is not a number" in line for line in error.value.problems)
    assert any("a is listed more than once" in line for line in error.value.problems)


def test_batches_are_collated_once_and_keep_set_order(tmp_path):
    for index in range(5):
        save_graph(graph(3 + index, y=index / 10), tmp_path / f"g{index}.pt")
    graphs = GraphSet.load(
        tmp_path, write_labels(tmp_path / "l.csv", [f"g{i}" for i in (4, 0, 3, 1, 2)]), progress=False
    )
    loader = make_loader(graphs, batch_size=2)
    first, second = list(loader), list(loader)
    assert all(a is b for a, b in zip(first, second, strict=True))  # the same Batch objects: collated once
    expected = [[0.4, 0.0], [0.3, 0.1], [0.2]]
    assert [batch.y.tolist() for batch in first] == [torch.tensor(row).tolist() for row in expected]
    assert [batch.sample_id.tolist() for batch in first] == [[0, 1], [2, 3], [4]]


def test_synthetic_sets_are_valid_training_input(tmp_path):
    config = write_synthetic_set(tmp_path, count=8, seed=3, min_nodes=20, max_nodes=40)
    graphs = GraphSet.load(tmp_path / "graphs", tmp_path / "train.csv", progress=False)
    assert len(graphs) == 6 and config.is_file()
    item = synthetic_graph(np.random.default_rng(0), 50)
    assert item.edge_index.shape[1] == 200 and int(item.edge_index.max()) < 50


def test_best_checkpoints_replace_the_worst_and_store_nan_as_inf(tmp_path):
    best = BestCheckpoints(tmp_path, top_k=3)
    losses = [0.5, math.nan, 0.3, 0.4, 0.2, 0.9]
    decisions = [best.update(epoch, torch.tensor(value)) for epoch, value in enumerate(losses)]
    saved = [Path(d.save).name if d.save else None for d in decisions]
    removed = [Path(d.remove).name if d.remove else None for d in decisions]
    assert saved[:5] == [
        "topo_epoch=0_val_loss=0.50000.ckpt",
        "topo_epoch=1_val_loss=inf.ckpt",
        "topo_epoch=2_val_loss=0.30000.ckpt",
        "topo_epoch=3_val_loss=0.40000.ckpt",
        "topo_epoch=4_val_loss=0.20000.ckpt",
    ]
    assert saved[5] is None
    assert removed == [None, None, None, "topo_epoch=1_val_loss=inf.ckpt", "topo_epoch=0_val_loss=0.50000.ckpt", None]
    assert Path(best.best_model_path).name == "topo_epoch=4_val_loss=0.20000.ckpt"
    assert Path(best.kth_best_model_path).name == "topo_epoch=3_val_loss=0.40000.ckpt"
