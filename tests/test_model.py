"""The network against the reference: initial weights, checkpoint layout, golden predictions."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file
from torch_geometric.data import Batch, Data

from model.checkpoint import load_model, read_checkpoint
from model.topoqa import build_model
from tests.conftest import need_reference


def golden_graphs(golden_dirs) -> list[tuple[Data, float]]:
    graphs = []
    for folder in golden_dirs:
        tensors = load_file(folder / "graph.safetensors")
        expected = json.loads((folder / "expected.json").read_text())["pred_dockq"]
        graphs.append((Data(**tensors), expected))
    return graphs


def predict(model, batch: Batch) -> torch.Tensor:
    with torch.no_grad():
        return model(batch.x, batch.edge_index, batch.edge_attr, batch.batch).view(-1)


def test_seeded_construction_equals_reference_initial_weights():
    reference = load_file(need_reference("init_seed222.safetensors"))
    ours = build_model(seed=222).state_dict()
    assert set(ours) == set(reference)
    mismatched = [key for key in reference if not torch.equal(ours[key], reference[key])]
    assert not mismatched, f"initial weights differ from the reference at {mismatched}"


def test_unseeded_construction_differs_from_reference():
    # Guards the test above against a model that happens to ignore the seed path.
    reference = load_file(need_reference("init_seed222.safetensors"))
    ours = build_model(seed=1).state_dict()
    assert not torch.equal(ours["embed.0.weight"], reference["embed.0.weight"])


def test_state_dict_layout_is_the_published_one(published_checkpoint):
    published = read_checkpoint(published_checkpoint).state_dict
    ours = build_model().state_dict()
    assert len(ours) == 39
    assert list(ours) == list(published)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in published.items()}


def test_golden_predictions_match_reference(published_checkpoint, golden_dirs):
    model = load_model(published_checkpoint)
    for graph, expected in golden_graphs(golden_dirs):
        prediction = predict(model, Batch.from_data_list([graph])).item()
        assert abs(prediction - expected) <= 1e-6, (prediction, expected)


def test_conv3_is_not_applied(published_checkpoint, golden_dirs):
    model = load_model(published_checkpoint)
    batch = Batch.from_data_list([graph for graph, _ in golden_graphs(golden_dirs)])
    before = predict(model, batch)
    with torch.no_grad():
        for parameter in model.conv3.parameters():
            parameter.add_(1.0)
    assert torch.equal(before, predict(model, batch))


def test_predictions_do_not_depend_on_batching(published_checkpoint, golden_dirs):
    model = load_model(published_checkpoint)
    graphs = [graph for graph, _ in golden_graphs(golden_dirs)]
    one_by_one = torch.cat([predict(model, Batch.from_data_list([g])) for g in graphs])
    together = predict(model, Batch.from_data_list(graphs))
    reversed_order = predict(model, Batch.from_data_list(graphs[::-1])).flip(0)
    assert torch.allclose(one_by_one, together, atol=1e-6, rtol=0)
    assert torch.allclose(one_by_one, reversed_order, atol=1e-6, rtol=0)
