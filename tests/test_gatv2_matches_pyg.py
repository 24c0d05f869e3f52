"""model/gatv2.py against PyG's GATv2Conv, the layer the published network and the reference run were built on.

Bit-for-bit: seeded initial weights and the random stream after construction, parameter order, forward values
and every gradient, in eval and in training mode (dropout), on real interface graphs.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch_geometric.nn import GATv2Conv, global_mean_pool

from model.checkpoint import expected_shapes
from model.gatv2 import EdgeUpdatingGATv2Conv, scatter_mean
from model.topoqa import TopoQA


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
def golden_batch(golden_dirs):
    """The four golden graphs as one batch, node and edge features embedded to 32 channels by a seeded layer."""
    graphs = [load_file(folder / "graph.safetensors") for folder in golden_dirs]
    offsets = torch.cumsum(torch.tensor([0] + [g["x"].shape[0] for g in graphs[:-1]]), 0)
    edge_index = torch.cat([g["edge_index"] + offset for g, offset in zip(graphs, offsets, strict=True)], dim=1)
    torch.manual_seed(0)
    x = nn.Linear(172, 32)(torch.cat([g["x"] for g in graphs])).detach()
    edge_attr = nn.Linear(11, 32)(torch.cat([g["edge_attr"] for g in graphs])).detach()
    return x, edge_index, edge_attr


def test_seeded_construction_equals_pyg():
    for seed in (0, 222, 7):
        ours, theirs = build_both(seed)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert [name for name, _ in ours.named_parameters()] == [name for name, _ in theirs.named_parameters()]
        for key, value in theirs.state_dict().items():
            assert torch.equal(ours.state_dict()[key], value), (seed, key)


@pytest.mark.parametrize("training", [False, True])
def test_forward_and_gradients_equal_pyg(golden_batch, training):
    x, edge_index, edge_attr = golden_batch
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


def test_network_imports_without_pyg():
    # Inference relies on this to keep PyG's imports (several seconds) out of the start-up.
    import subprocess
    import sys

    code = "import sys, model.topoqa, model.predict; sys.exit('torch_geometric' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=__file__.rsplit("/tests/", 1)[0]).returncode == 0
