"""A featurised complex as plain NumPy arrays: what worker processes produce without ever importing torch.

The network reads these arrays directly (model.predict); `to_data()` wraps them (without copying) into the PyG
`Data` of graph files and training sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch_geometric.data import Data

# Bumped whenever the meaning of x / edge_attr changes.
GRAPH_FORMAT_VERSION = 1
# The widths of a graph's features, for every layer above: the featurisation, the network, checkpoints, checks.
# data.node_features.NODE_COLUMNS: rASA, phi, psi, 8 secondary structures, 21 residue types, 140 topological numbers.
NODE_FEATURES = 172
EDGE_FEATURES = 11  # CA-CA distance, then 10 atom-distance histogram bins (data.edges)


@dataclass
class GraphArrays:
    name: str
    x: np.ndarray  # float32 [N, NODE_FEATURES]
    edge_index: np.ndarray  # int64 [2, E]
    edge_attr: np.ndarray  # float32 [E, EDGE_FEATURES]
    geometry: str
    feature_version: int = GRAPH_FORMAT_VERSION

    def to_data(self) -> Data:
        """The PyG graph: x, edge_index, edge_attr, name, geometry, feature_version."""
        import torch
        from torch_geometric.data import Data

        graph = Data(
            x=torch.from_numpy(self.x), edge_index=torch.from_numpy(self.edge_index),
            edge_attr=torch.from_numpy(self.edge_attr),
        )
        graph.name = self.name
        graph.geometry = self.geometry
        graph.feature_version = self.feature_version
        return graph
