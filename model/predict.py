"""Batched prediction: one implementation for infer.py, the converter's verify and the tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from model.topoqa import TopoQA


class GraphTensors(Protocol):
    """What the network reads from a graph: a PyG `Data`, or the featurizer's NumPy `GraphArrays`."""

    x: Tensor | np.ndarray
    edge_index: Tensor | np.ndarray
    edge_attr: Tensor | np.ndarray


def collate(graphs: Sequence[GraphTensors]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(x, edge_index, edge_attr, batch) of the graphs side by side, as PyG's Batch.from_data_list builds them."""
    x = [torch.as_tensor(graph.x, dtype=torch.float32) for graph in graphs]
    sizes = torch.tensor([len(nodes) for nodes in x])
    offsets = torch.cumsum(sizes, 0) - sizes
    edge_index = torch.cat(
        [
            torch.as_tensor(graph.edge_index, dtype=torch.int64) + offset
            for graph, offset in zip(graphs, offsets.tolist(), strict=True)
        ],
        dim=1,
    )
    edge_attr = torch.cat([torch.as_tensor(graph.edge_attr, dtype=torch.float32) for graph in graphs])
    batch = torch.repeat_interleave(torch.arange(len(graphs)), sizes)
    return torch.cat(x), edge_index, edge_attr, batch


def predict(model: TopoQA, graphs: Sequence[GraphTensors], batch_size: int = 1) -> Tensor:
    """Predicted DockQ per graph, in input order: eval mode, no gradients, on the model's device.

    With `batch_size` 1 (the default, what infer.py uses) each graph goes through the network alone, so its
    prediction is the same bits whatever else is scored with it: in a batch, a graph's matrix products are
    computed in blocks that depend on the other graphs' sizes, which moves the last bit of ~half of the
    predictions (6e-8). Larger batches are quicker on a GPU, for comparisons that do not need the last bit.
    On the CPU the bits also depend on the number of intra-op threads: infer.py scores with one.
    """
    model.eval()
    device = next(model.parameters()).device
    predictions = [torch.empty(0)]
    starts = range(0, len(graphs), batch_size)
    with torch.no_grad():
        for start in tqdm(starts, desc="predicting", unit="batch", leave=False, disable=len(starts) < 8):
            tensors = [tensor.to(device) for tensor in collate(graphs[start : start + batch_size])]
            predictions.append(model(*tensors).view(-1).cpu())
    return torch.cat(predictions)
