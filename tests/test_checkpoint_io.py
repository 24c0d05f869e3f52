"""Checkpoint reading and writing (model/checkpoint.py) against the reference checkpoints and train.py's
checkpoint from generated graphs (conftest.py)."""

from __future__ import annotations

import os
import pickle
import shlex
import stat
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from model.checkpoint import (
    LIGHTNING_METADATA_KEY,
    CheckpointError,
    read_checkpoint,
    write_lightning,
    write_safetensors,
)
from model.topoqa import TopoQA
from tests.conftest import need_reference
from training.lightning_checkpoint import (
    lightning_from_weights,
    lightning_metadata,
    read_training_state,
    training_state_path,
    write_training_state,
)
from training.run_folder import RESUME_KEY


def assert_same_tree(ours, theirs, where: str = "checkpoint") -> None:
    """Equal structure, types, keys in order, and bit-identical tensors (dtype and shape included)."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, torch.Tensor), where
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, where
        assert torch.equal(ours.cpu(), theirs.cpu()), where
        return
    assert type(ours) is type(theirs), f"{where}: {type(ours).__name__} vs {type(theirs).__name__}"
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs), where
        for key in theirs:
            assert_same_tree(ours[key], theirs[key], f"{where}/{key}")
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), where
        for index, (mine, other) in enumerate(zip(ours, theirs, strict=True)):
            assert_same_tree(mine, other, f"{where}/{index}")
    else:
        assert ours == theirs, f"{where}: {ours!r} vs {theirs!r}"


# The published checkpoint (Lightning 2.3.3) and the recorded run's (Lightning 2.6.6).
REFERENCE_LIGHTNING_FILES = [
    "topoqa.ckpt.original",
    "training_run/expected/topo_epoch=1_val_loss=0.01077.ckpt",
    "training_run/expected/topo_epoch=2_val_loss=0.02203.ckpt",
    "training_run/expected/topo_epoch=3_val_loss=0.00852.ckpt",
    "training_run/expected/topo_last.ckpt",
]


def test_published_checkpoint_reads_as_lightning(published_checkpoint):
    checkpoint = read_checkpoint(published_checkpoint)
    assert checkpoint.format == "lightning"
    assert (checkpoint.epoch, checkpoint.global_step) == (199, 3400)
    assert len(checkpoint.state_dict) == 39
    assert sum(tensor.numel() for tensor in checkpoint.state_dict.values()) == 164433


def _state_dict_without(key: str) -> dict:
    state_dict = TopoQA().state_dict()
    del state_dict[key]
    return state_dict


BAD_CHECKPOINTS = {
    "heads4.ckpt": (lambda: {"state_dict": TopoQA(heads=4).state_dict()}, "conv1.0.att has shape [1, 4, 32]"),
    "missing.ckpt": (lambda: {"state_dict": _state_dict_without("out.bias")}, "missing key out.bias"),
    "extra.ckpt": (lambda: {"state_dict": {**TopoQA().state_dict(), "x.w": torch.zeros(1)}}, "unexpected key x.w"),
    "not_tensor.ckpt": (lambda: {"state_dict": {**TopoQA().state_dict(), "out.bias": 0.5}}, "key out.bias is a float"),
    "list.ckpt": (lambda: [1, 2, 3], "not a TopoQA checkpoint"),
}


@pytest.mark.parametrize("name", sorted(BAD_CHECKPOINTS))
def test_wrong_contents_are_named(tmp_path, name):
    build, expected = BAD_CHECKPOINTS[name]
    path = tmp_path / name
    torch.save(build(), path)
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(path)
    assert str(error.value).startswith(f"{path}: ")
    assert expected in str(error.value)


def test_heads4_safetensors_is_named(tmp_path):
    path = tmp_path / "heads4.safetensors"
    from safetensors.torch import save_file

    save_file({key: value.contiguous() for key, value in TopoQA(heads=4).state_dict().items()}, path)
    with pytest.raises(CheckpointError, match=r"heads4.safetensors: key conv1.0.att has shape \[1, 4, 32\]"):
        read_checkpoint(path)


def test_unreadable_files_are_named(tmp_path, trained_checkpoint):
    data = trained_checkpoint.read_bytes()
    cases = {
        "absent.ckpt": (None, "file not found"),
        "empty.ckpt": (b"", "file is empty"),
        "notes.ckpt": (b"just some text\n" * 20, "not a PyTorch checkpoint"),
        "truncated.ckpt": (data[: len(data) // 2], "truncated or corrupted"),
    }
    write_safetensors(tmp_path / "whole.safetensors", TopoQA().state_dict())
    weights = (tmp_path / "whole.safetensors").read_bytes()
    cases["truncated.safetensors"] = (weights[: len(weights) // 2], "truncated or corrupted")
    cases["header_only.safetensors"] = (weights[:40], "truncated or corrupted")
    for name, (content, expected) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(CheckpointError) as error:
            read_checkpoint(path)
        assert str(error.value).startswith(f"{path}: ") and expected in str(error.value), str(error.value)


class _TouchMarker:
    """A pickle payload that runs a shell command when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def test_malicious_pickle_is_refused_not_run(tmp_path):
    marker = tmp_path / "payload_ran"
    zipped, legacy = tmp_path / "evil.ckpt", tmp_path / "evil_legacy.ckpt"
    torch.save({"state_dict": _TouchMarker(marker), "epoch": 1}, zipped)
    legacy.write_bytes(pickle.dumps({"state_dict": _TouchMarker(marker)}, protocol=2))

    # Control: the payload is live, an unrestricted unpickler runs it.
    pickle.loads(legacy.read_bytes())
    assert marker.exists()
    marker.unlink()

    for path in (zipped, legacy):
        with pytest.raises(CheckpointError) as error:
            read_checkpoint(path)
        assert str(error.value).startswith(f"{path}: refused to load")
        assert "system" in str(error.value)
        assert not marker.exists()


def test_safetensors_round_trip_is_bit_identical(tmp_path, lightning_file):
    published = read_checkpoint(lightning_file)
    path = tmp_path / "weights.safetensors"
    write_safetensors(path, published.state_dict, lightning_metadata(published.lightning))
    again = read_checkpoint(path)
    assert again.format == "safetensors"
    assert_same_tree(dict(again.state_dict), dict(published.state_dict))
    original = torch.load(lightning_file, map_location="cpu", weights_only=True)
    assert (again.epoch, again.global_step) == (original["epoch"], original["global_step"])
    assert again.metadata["format_version"] == "1"
    assert again.metadata["pytorch-lightning_version"] == original["pytorch-lightning_version"]


def test_training_state_rebuilds_generated_checkpoints_exactly(tmp_path, generated_run):
    # Every checkpoint of train.py's run on generated graphs (top-3 and last): no reference needed.
    sources = sorted((generated_run / "run").glob("topo_*.ckpt"))
    assert len(sources) >= 3
    for k, source in enumerate(sources):
        assert_training_state_rebuilds(tmp_path / str(k), source)


@pytest.mark.parametrize("name", REFERENCE_LIGHTNING_FILES)
def test_training_state_rebuilds_reference_checkpoints_exactly(tmp_path, name):
    assert_training_state_rebuilds(tmp_path, need_reference(*name.split("/")))


def assert_training_state_rebuilds(folder: Path, source: Path) -> None:
    """weights.safetensors plus its training-state companion give back the Lightning file's tree exactly."""
    folder.mkdir(exist_ok=True)
    original = torch.load(source, map_location="cpu", weights_only=True)
    checkpoint = read_checkpoint(source)
    weights = folder / "weights.safetensors"
    write_safetensors(weights, checkpoint.state_dict, lightning_metadata(checkpoint.lightning))
    write_training_state(training_state_path(weights), checkpoint.lightning, weights)
    rebuilt = read_training_state(training_state_path(weights), read_checkpoint(weights))
    assert_same_tree(rebuilt, original)
    assert rebuilt["optimizer_states"][0]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert len(rebuilt["optimizer_states"][0]["state"]) == 30  # conv3 never stepped


def test_training_state_refuses_other_weights(tmp_path, trained_checkpoint):
    checkpoint = read_checkpoint(trained_checkpoint)
    weights, other = tmp_path / "weights.safetensors", tmp_path / "other.safetensors"
    write_safetensors(weights, checkpoint.state_dict)
    write_safetensors(other, TopoQA().state_dict())
    write_training_state(training_state_path(weights), checkpoint.lightning, weights)
    with pytest.raises(CheckpointError, match="belongs to another weights file"):
        read_training_state(training_state_path(weights), read_checkpoint(other))
    with pytest.raises(CheckpointError, match="is a training-state companion, not weights: use weights.safetensors"):
        read_checkpoint(training_state_path(weights))


def test_training_state_refuses_values_it_cannot_carry(tmp_path, trained_checkpoint):
    checkpoint = read_checkpoint(trained_checkpoint)
    weights = tmp_path / "weights.safetensors"
    write_safetensors(weights, checkpoint.state_dict)
    lightning = {**checkpoint.lightning, "hyper_parameters": {"shape": torch.Size([1, 2])}}
    with pytest.raises(CheckpointError, match="hyper_parameters/shape: holds a Size"):
        write_training_state(training_state_path(weights), lightning, weights)
    assert not training_state_path(weights).exists()


def test_weights_only_lightning_keeps_epoch_step_and_loops(tmp_path, lightning_file):
    published = read_checkpoint(lightning_file)
    path = tmp_path / "weights.safetensors"
    write_safetensors(path, published.state_dict, {**lightning_metadata(published.lightning), "geometry": "xyy"})
    lightning = lightning_from_weights(read_checkpoint(path))
    # train.py's own resume state (RESUME_KEY, topo_last.ckpt only) goes with the optimizer, not the weights.
    assert list(lightning)[:8] == [key for key in published.lightning if key != RESUME_KEY]
    counters = (lightning["epoch"], lightning["global_step"])
    assert counters == (published.lightning["epoch"], published.lightning["global_step"]) and counters[1] > 0
    assert lightning["pytorch-lightning_version"] == published.lightning["pytorch-lightning_version"]
    if lightning_file.name == "topoqa.ckpt.original":  # what the published file records
        assert counters == (199, 3400) and lightning["pytorch-lightning_version"] == "2.3.3"
    assert_same_tree(lightning["loops"], published.lightning["loops"])
    assert lightning["optimizer_states"] == [] and lightning["callbacks"] == {} and lightning["lr_schedulers"] == []
    assert isinstance(lightning["state_dict"], OrderedDict)
    assert lightning[LIGHTNING_METADATA_KEY] == {"geometry": "xyy"}

    # The carried metadata comes back when the Lightning file is read.
    ckpt = tmp_path / "weights.ckpt"
    write_lightning(ckpt, lightning)
    assert read_checkpoint(ckpt).metadata == {"geometry": "xyy"}
    assert lightning_metadata(torch.load(ckpt, weights_only=True))["geometry"] == "xyy"


def test_weights_only_lightning_without_history_is_untrained(tmp_path):
    path = tmp_path / "weights.safetensors"
    write_safetensors(path, TopoQA().state_dict())
    lightning = lightning_from_weights(read_checkpoint(path))
    assert (lightning["epoch"], lightning["global_step"]) == (0, 0)
    progress = lightning["loops"]["fit_loop"]["epoch_progress"]["total"]
    assert progress == {"ready": 0, "started": 0, "processed": 0, "completed": 0}


def test_written_files_get_ordinary_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        path = tmp_path / "weights.safetensors"
        write_safetensors(path, TopoQA().state_dict())
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_writers_refuse_to_clobber(tmp_path):
    path = tmp_path / "weights.safetensors"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="already exists"):
        write_safetensors(path, TopoQA().state_dict())
    assert path.read_bytes() == b"precious"
    write_safetensors(path, TopoQA().state_dict(), overwrite=True)
    assert read_checkpoint(path).format == "safetensors"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.safetensors"]  # no temporary left behind
