"""Batched prediction: one implementation for infer.py, the converter's verify and the tests."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from tqdm import tqdm

from model.topoqa import TopoQA


def predict(model: TopoQA, graphs: Sequence[Data], batch_size: int = 16) -> Tensor:
    """Predicted DockQ per graph, in input order: eval mode, no gradients, on the model's device.

    A graph's prediction does not depend on which other graphs share its batch.
    """
    model.eval()
    device = next(model.parameters()).device
    predictions = [torch.empty(0)]
    starts = range(0, len(graphs), batch_size)
    with torch.no_grad():
        for start in tqdm(starts, desc="predicting", unit="batch", leave=False, disable=len(starts) < 8):
            # Only the tensors the network reads: graphs from different sources carry different extras (y, name...).
            chunk = [
                Data(x=graph.x, edge_index=graph.edge_index, edge_attr=graph.edge_attr)
                for graph in graphs[start : start + batch_size]
            ]
            batch = Batch.from_data_list(chunk).to(device)
            predictions.append(model(batch.x, batch.edge_index, batch.edge_attr, batch.batch).view(-1).cpu())
    return torch.cat(predictions)
