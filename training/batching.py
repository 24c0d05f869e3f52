"""DataLoaders over in-memory graphs; each distinct batch is collated once and reused every epoch."""

from __future__ import annotations

from torch.utils.data import DataLoader, Dataset
from torch_geometric.data import Batch, Data


class CachedCollater:
    """Collate graphs into a PyG `Batch`, remembering the result by the graphs' `sample_id`.

    Without shuffling the batches are the same every epoch, so collating them again would only cost time.
    The cache holds at most one copy of the dataset.
    """

    def __init__(self) -> None:
        self.cache: dict[tuple[int, ...], Batch] = {}

    def __call__(self, graphs: list[Data]) -> Batch:
        key = tuple(int(graph.sample_id) for graph in graphs)
        batch = self.cache.get(key)
        if batch is None:
            batch = self.cache[key] = Batch.from_data_list(graphs)
        return batch


def make_loader(dataset: Dataset, batch_size: int) -> DataLoader:
    """Batches in dataset order, no shuffling, no worker processes (the graphs are already in memory)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=CachedCollater())
