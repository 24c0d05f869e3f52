"""GATv2 attention with edge updates (SPEC 1.5) in plain torch, numerically identical to PyG's GATv2Conv.

The published network was built on PyG's `GATv2Conv(concat=False, add_self_loops=False, edge_dim=...)`.
This module performs the same torch operations in the same order, draws the same random numbers at
construction and registers the parameters in the same order, so forward values, gradients, seeded initial
weights and optimizer state indices are bit-identical to it (tests/test_gatv2_matches_pyg.py checks this against
the pinned PyG 2.8.1, on the CPU).
Doing without PyG here keeps its ~3 s of imports out of inference.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NEGATIVE_SLOPE = 0.2  # GATv2Conv's default leaky-ReLU slope


def _along_rows(index: Tensor, like: Tensor) -> Tensor:
    """`index` [N] viewed and expanded to `like`'s shape (PyG's utils.broadcast along dim 0)."""
    return index.view((-1,) + (1,) * (like.dim() - 1)).expand_as(like)


def scatter_sum(src: Tensor, index: Tensor, size: int) -> Tensor:
    """Sum the rows of `src` into `size` rows by `index` (PyG's scatter(reduce='sum'))."""
    return src.new_zeros((size, *src.shape[1:])).scatter_add_(0, _along_rows(index, src), src)


def scatter_mean(src: Tensor, index: Tensor, size: int) -> Tensor:
    """Mean of the rows of `src` per `index`, 0 for empty groups (PyG's scatter(reduce='mean'), global_mean_pool)."""
    count = src.new_zeros(size).scatter_add_(0, index, src.new_ones(src.size(0))).clamp(min=1)
    total = scatter_sum(src, index, size)
    return total / _along_rows(count, total)


def segment_softmax(scores: Tensor, index: Tensor, size: int) -> Tensor:
    """Softmax over the rows that share an `index` value (PyG's utils.softmax with an index)."""
    maxima = scores.new_zeros((size, *scores.shape[1:])).scatter_reduce_(
        0, _along_rows(index, scores), scores.detach(), reduce="amax", include_self=False
    )
    shifted = (scores - maxima.index_select(0, index)).exp()
    totals = scatter_sum(shifted, index, size) + 1e-16
    return shifted / totals.index_select(0, index)


def _uniform_(tensor: Tensor, bound: float) -> None:
    with torch.no_grad():
        tensor.uniform_(-bound, bound)


def _glorot_(tensor: Tensor) -> None:
    _uniform_(tensor, math.sqrt(6.0 / (tensor.size(-2) + tensor.size(-1))))


class UninitialisedLinear(nn.Linear):
    """nn.Linear that skips its own random initialisation (draws nothing, on any device); values are set after.

    Not torch.nn.utils.skip_init: that goes through the meta device, whose first use imports ~1 s of modules.
    """

    def reset_parameters(self) -> None:
        pass


class EdgeUpdatingGATv2Conv(nn.Module):
    """GATv2 attention on nodes (heads averaged) plus a per-head linear update of every edge.

    For an edge j -> i: e = lin_l(x)_j + lin_r(x)_i + lin_edge(edge_attr), score = att . leaky_relu(e) per head,
    softmax of the scores over the edges into i (dropout in training) = attention, message
    lin_l(x)_j * attention, summed into i, averaged over heads, plus bias.
    The new edge value is edge_linear(cat(x_out[source], x_out[target], edge_in)) averaged over heads.
    """

    def __init__(self, channels: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.out_channels, self.dropout = heads, channels, dropout
        width = heads * channels
        self.lin_l = UninitialisedLinear(channels, width)
        self.lin_r = UninitialisedLinear(channels, width)
        self.att = nn.Parameter(torch.empty(1, heads, channels))
        self.lin_edge = UninitialisedLinear(channels, width, bias=False)
        self.bias = nn.Parameter(torch.empty(channels))
        # PyG initialises each of its Linear layers when it is created, then all of them again in
        # reset_parameters(); the first draws are overwritten but move the random stream.
        for _ in range(2):
            for linear in (self.lin_l, self.lin_r, self.lin_edge):
                _glorot_(linear.weight)
                if linear.bias is not None:
                    _uniform_(linear.bias, 1.0 / math.sqrt(channels))
        _glorot_(self.att)
        with torch.no_grad():
            self.bias.zero_()
        # Created after the GATv2 parameters: the creation order fixes the seeded initial values and the
        # Adam state indices (SPEC 1.5).
        self.edge_linear = nn.Linear(3 * channels, width)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> tuple[Tensor, Tensor]:
        heads, channels = self.heads, self.out_channels
        source, target = edge_index[0], edge_index[1]
        x_l = self.lin_l(x).view(-1, heads, channels)
        x_r = self.lin_r(x).view(-1, heads, channels)
        num_nodes = x_r.size(0)
        # Attention scores (PyG's edge_update). x_l is gathered again for the messages, as PyG does, so that
        # the backward pass accumulates the same terms in the same order.
        x_j = x_l.index_select(0, source)
        x_i = x_r.index_select(0, target)
        pair = (x_i + x_j) + self.lin_edge(edge_attr).view(-1, heads, channels)
        scores = (F.leaky_relu(pair, NEGATIVE_SLOPE) * self.att).sum(dim=-1)
        alpha = segment_softmax(scores, target, num_nodes)
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        messages = x_l.index_select(0, source) * alpha.unsqueeze(-1)
        node_out = scatter_sum(messages, target, num_nodes).mean(dim=1) + self.bias

        edge_in = torch.cat([node_out[source], node_out[target], edge_attr], dim=-1)
        edge_out = self.edge_linear(edge_in).view(-1, heads, channels).mean(dim=1)
        return node_out, edge_out
