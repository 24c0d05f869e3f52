"""The TopoQA network (SPEC 1.5): GATv2 attention on interface graphs with edge updates."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from data.graph_arrays import EDGE_FEATURES, NODE_FEATURES
from model.gatv2 import EdgeUpdatingGATv2Conv, scatter_mean

HIDDEN = 32
HEADS = 8
DROPOUT = 0.25


class TopoQA(nn.Module):
    """Predicts the DockQ of an interface graph; output in (0, 1)."""

    def __init__(
        self,
        node_features: int = NODE_FEATURES,
        edge_features: int = EDGE_FEATURES,
        hidden: int = HIDDEN,
        heads: int = HEADS,
        dropout: float = DROPOUT,
    ) -> None:
        super().__init__()
        # Module creation order is part of the contract: see SPEC 1.5.
        self.edge_embed = nn.Sequential(nn.Linear(edge_features, hidden))
        self.embed = nn.Sequential(nn.Linear(node_features, hidden))
        self.conv1 = nn.ModuleList([EdgeUpdatingGATv2Conv(hidden, heads, dropout)])
        self.conv2 = nn.ModuleList([EdgeUpdatingGATv2Conv(hidden, heads, dropout)])
        # Present in the published checkpoint but never applied in forward.
        self.conv3 = nn.ModuleList([EdgeUpdatingGATv2Conv(hidden, heads, dropout)])
        self.fc_edge = nn.Linear(hidden, hidden // 2)
        self.protein_fc_1 = nn.Sequential(nn.Linear(hidden + hidden // 2, 2 * hidden), nn.ReLU())
        self.fc1 = nn.Linear(2 * hidden, 2 * hidden)
        self.out = nn.Linear(2 * hidden, 1)
        self.elu = nn.ELU()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor) -> Tensor:
        """Return predictions of shape [num_graphs, 1]."""
        x = self.embed(x)
        edge_attr = self.edge_embed(edge_attr)
        for conv in (self.conv1[0], self.conv2[0]):
            x, edge_attr = conv(x, edge_index, edge_attr)
            x, edge_attr = self.elu(x), self.elu(edge_attr)
        num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        pooled_nodes = scatter_mean(x, batch, num_graphs)
        pooled_edges = scatter_mean(edge_attr, batch[edge_index[0]], num_graphs)
        readout = torch.cat([pooled_nodes, self.fc_edge(pooled_edges)], dim=1)
        hidden = torch.relu(self.fc1(self.protein_fc_1(readout)))
        return torch.sigmoid(self.out(hidden))


def build_model(seed: int | None = None, heads: int = HEADS) -> TopoQA:
    """Construct the network; with a seed, its initial weights equal the reference's."""
    if seed is not None:
        torch.manual_seed(seed)
    return TopoQA(heads=heads)
