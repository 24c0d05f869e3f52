"""model/gatv2.py against PyG's GATv2Conv, the layer the published network and the reference run were built on.

Bit-for-bit: seeded initial weights and the random stream after construction, parameter order, forward values
and every gradient, in eval and in training mode (dropout), on real interface graphs (the bundled examples,
featurised here) and generated ones (training/synthetic_graphs.py).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GATv2Conv, global_mean_pool

from data.featurize import featurize_complex
from model.checkpoint import expected_shapes
from model.gatv2 import EdgeUpdatingGATv2Conv, scatter_mean
from model.predict import collate
from model.topoqa import TopoQA
from tests.conftest import REPO_ROOT, needs_mkdssp
from training.synthetic_graphs import synthetic_graph


class PygEdgeUpdatingGATv2Conv(GATv2Conv):
    """The oracle: PyG's GATv2Conv with the edge update described in SPEC 1.5."""

    def __init__(self, channels: int, heads: int, dropout: float) -> None:
        super().__init__(channels, channels, heads=heads, concat=False, dropout=dropout, add_self_loops=False,
                         edge_dim=channels)
        self.edge_linear = nn.Linear(3 * channels, heads * channels)

    def forward(self, x, edge_index, edge_attr):  # type: ignore[override]
        node_out = super().forward(x, edge_index, edge_attr)
        edge_in = torch.cat([node_out[edge_index[0]], node_out[edge_index[1]], edge_attr], dim=-1)
        return node_out, self.edge_linear(edge_in).view(-1, self.heads, self.out_channels).mean(dim=1)


def build_both(seed: int) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    ours = EdgeUpdatingGATv2Conv(32, 8, 0.25)
    ours_next = torch.rand(4)
    torch.manual_seed(seed)
    theirs = PygEdgeUpdatingGATv2Conv(32, 8, 0.25)
    assert torch.equal(ours_next, torch.rand(4)), "construction drew a different amount of random numbers"
    return ours, theirs


@pytest.fixture(scope="module")
def graphs(mkdssp) -> list[dict[str, torch.Tensor]]:
    """Interface graphs of two bundled wwPDB complexes, as the featurisation makes them, and two generated
    graphs of other sizes."""
    real = [featurize_complex(REPO_ROOT / "examples" / name) for name in ("1HVR.pdb", "4E43.pdb")]
    rng = np.random.default_rng(11)
    generated = [synthetic_graph(rng, size) for size in (23, 70)]
    return [{"x": g.x, "edge_index": g.edge_index, "edge_attr": g.edge_attr} for g in [*real, *generated]]


@pytest.fixture(scope="module")
def interface_batch(graphs):
    """The graphs as one batch plus three nodes without edges (empty softmax groups), node and edge features
    embedded to 32 channels by a seeded layer."""
    offsets = torch.cumsum(torch.tensor([0] + [g["x"].shape[0] for g in graphs[:-1]]), 0)
    edge_index = torch.cat([g["edge_index"] + offset for g, offset in zip(graphs, offsets, strict=True)], dim=1)
    torch.manual_seed(0)
    x = nn.Linear(172, 32)(torch.cat([g["x"] for g in graphs] + [torch.rand(3, 172)])).detach()
    edge_attr = nn.Linear(11, 32)(torch.cat([g["edge_attr"] for g in graphs])).detach()
    return x, edge_index, edge_attr


def test_seeded_construction_equals_pyg():
    for seed in (0, 222, 7):
        ours, theirs = build_both(seed)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert [name for name, _ in ours.named_parameters()] == [name for name, _ in theirs.named_parameters()]
        for key, value in theirs.state_dict().items():
            assert torch.equal(ours.state_dict()[key], value), (seed, key)


@pytest.fixture
def one_thread():
    """One intra-op thread, as train.py uses by default for bit-exact runs.

    With two threads this comparison failed once, in a CI run on a heavily loaded machine (not reproduced in
    isolation, in the suite's order, or under load in 300 repeats). A math library that splits a matrix
    product by the threads it actually gets could explain it; with one thread the split is fixed.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@needs_mkdssp
@pytest.mark.parametrize("training", [False, True])
def test_forward_and_gradients_equal_pyg(interface_batch, training, one_thread):
    x, edge_index, edge_attr = interface_batch
    results = []
    for layer in build_both(222):
        layer.train(training)
        inputs = [x.clone().requires_grad_(), edge_attr.clone().requires_grad_()]
        torch.manual_seed(5)  # the same dropout mask for both
        node_out, edge_out = layer(inputs[0], edge_index, inputs[1])
        (node_out.square().sum() + edge_out.sin().sum()).backward()
        results.append([node_out, edge_out, inputs[0].grad, inputs[1].grad, *(p.grad for p in layer.parameters())])
    for ours, theirs in zip(*results, strict=True):
        assert torch.equal(ours, theirs)
    if training:  # the comparison above must have seen dropout at work
        torch.manual_seed(5)
        layer = build_both(222)[0].eval()
        assert not torch.equal(layer(x, edge_index, edge_attr)[0], results[0][0])


def test_mean_pool_equals_pyg():
    values = torch.randn(50, 32, generator=torch.Generator().manual_seed(1))
    groups = torch.sort(torch.randint(0, 6, (50,), generator=torch.Generator().manual_seed(2))).values
    groups[groups == 3] = 4  # an empty group pools to zeros, as in PyG
    assert torch.equal(scatter_mean(values, groups, 7), global_mean_pool(values, groups, size=7))


def test_reading_network_shapes_draws_no_random_numbers():
    # Checkpoint code builds the network to read its shapes, possibly in the middle of a training run.
    expected_shapes.cache_clear()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    shapes = expected_shapes()
    assert torch.equal(torch.rand(3), expected)
    assert shapes == {key: tuple(value.shape) for key, value in TopoQA().state_dict().items()}


def test_scoring_path_never_imports_pyg():
    # infer.py relies on this to keep PyG's imports (several seconds) out of its start-up.
    code = """
import sys
import numpy as np
import infer  # noqa: F401
from data.graph_arrays import GraphArrays
from model.checkpoint import read_checkpoint  # noqa: F401
from model.predict import predict
from model.topoqa import build_model
graph = GraphArrays("g", np.ones((3, 172), np.float32), np.array([[0, 1], [1, 0]]), np.ones((2, 11), np.float32), "xyy")
assert predict(build_model(seed=0), [graph, graph]).shape == (2,)
sys.exit(3 if "torch_geometric" in sys.modules else 0)
"""
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]


@needs_mkdssp
def test_collate_equals_pyg_batching(graphs):
    edgeless = {"x": torch.rand(2, 172), "edge_index": torch.zeros(2, 0, dtype=torch.int64),
                "edge_attr": torch.zeros(0, 11)}
    data = [Data(**tensors) for tensors in [graphs[0], edgeless, *graphs[1:]]]
    batch = Batch.from_data_list(data)
    ours = collate(data)
    for mine, theirs in zip(ours, (batch.x, batch.edge_index, batch.edge_attr, batch.batch), strict=True):
        assert mine.dtype == theirs.dtype and torch.equal(mine, theirs)
