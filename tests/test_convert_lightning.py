"""Converted checkpoints in real PyTorch Lightning: loaded through its checkpoint API and resumed.

Lightning is a test-only dependency: the converter never imports it.
"""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch_geometric.loader import DataLoader

from convert import main
from model.checkpoint import read_checkpoint, write_safetensors
from model.graph_io import load_graph
from model.topoqa import TopoQA
from tests.lightning_reference import ReferenceModule


class ResumeProbe(pl.Callback):
    """Records where training restarted and the optimizer state it restarted with."""

    def on_train_start(self, trainer, module):
        self.start_epoch, self.start_step = trainer.current_epoch, trainer.global_step
        self.weights = {key: value.clone() for key, value in module.state_dict().items()}
        self.optimizer_state = {
            index: {key: value.clone() for key, value in state.items()}
            for index, state in enumerate(trainer.optimizers[0].state.values())
        }


@pytest.fixture(scope="module")
def loaders(generated_graphs):
    graphs = [load_graph(path) for path in sorted(generated_graphs.glob("*.pt"))[:6]]
    return DataLoader(graphs[:4], batch_size=2), DataLoader(graphs[4:], batch_size=2)


def resume(ckpt, loaders) -> tuple[pl.Trainer, ResumeProbe]:
    """Fit up to the saved epoch + 2, i.e. one more epoch after it (two for an untrained file)."""
    saved_epoch = torch.load(ckpt, weights_only=True)["epoch"]
    probe = ResumeProbe()
    trainer = pl.Trainer(
        max_epochs=saved_epoch + 2, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, callbacks=[probe],
    )
    trainer.fit(ReferenceModule(learning_rate=0.005, batch_size=2), *loaders, ckpt_path=str(ckpt))
    return trainer, probe


def convert(*argv) -> None:
    assert main([str(arg) for arg in argv]) == 0


def test_lightning_loads_the_converted_checkpoint(tmp_path, lightning_file):
    weights, ckpt = tmp_path / "w.safetensors", tmp_path / "w.ckpt"
    convert("to-safetensors", lightning_file, weights)
    convert("to-lightning", weights, ckpt)
    # strict by default
    module = ReferenceModule.load_from_checkpoint(ckpt, map_location="cpu", learning_rate=0.005, batch_size=2)
    published = read_checkpoint(lightning_file).state_dict
    assert list(module.state_dict()) == list(published)
    assert all(torch.equal(module.state_dict()[key], value) for key, value in published.items())


def test_resumes_with_the_optimizer_state(tmp_path, lightning_file, loaders):
    weights, ckpt = tmp_path / "w.safetensors", tmp_path / "w.ckpt"
    convert("to-safetensors", lightning_file, weights)
    convert("to-lightning", weights, ckpt)
    trainer, probe = resume(ckpt, loaders)
    original = torch.load(lightning_file, map_location="cpu", weights_only=True)
    epoch, step = original["epoch"], original["global_step"]
    assert (probe.start_epoch, probe.start_step) == (epoch + 1, step)
    assert all(torch.equal(probe.weights[key], value) for key, value in original["state_dict"].items())
    saved = original["optimizer_states"][0]["state"]
    assert len(probe.optimizer_state) == len(saved) == 30
    assert torch.equal(probe.optimizer_state[0]["exp_avg_sq"], saved[0]["exp_avg_sq"])
    assert float(probe.optimizer_state[0]["step"]) == step
    # One more epoch of two batches, one optimizer step each.
    assert (trainer.current_epoch, trainer.global_step) == (epoch + 2, step + 2)


def test_weights_only_resumes_with_a_fresh_optimizer(tmp_path, lightning_file, loaders):
    weights, ckpt = tmp_path / "w.safetensors", tmp_path / "w.ckpt"
    convert("to-safetensors", "--weights-only", lightning_file, weights)
    convert("to-lightning", weights, ckpt)
    trainer, probe = resume(ckpt, loaders)
    original = torch.load(lightning_file, map_location="cpu", weights_only=True)
    epoch, step = original["epoch"], original["global_step"]
    assert (probe.start_epoch, probe.start_step) == (epoch + 1, step)
    assert probe.optimizer_state == {}
    assert (trainer.current_epoch, trainer.global_step) == (epoch + 2, step + 2)


def test_safetensors_with_only_epoch_and_step_resumes(tmp_path, trained_checkpoint, loaders):
    # What a training script writes: weights plus epoch/step, no Lightning loops, one extra metadata key.
    weights, ckpt = tmp_path / "trained.safetensors", tmp_path / "trained.ckpt"
    state_dict = read_checkpoint(trained_checkpoint).state_dict
    write_safetensors(weights, state_dict, {"epoch": "3", "global_step": "8", "geometry": "xyz"})
    convert("to-lightning", weights, ckpt)
    assert read_checkpoint(ckpt).metadata == {"geometry": "xyz"}
    trainer, probe = resume(ckpt, loaders)
    assert (probe.start_epoch, probe.start_step) == (4, 8)
    assert (trainer.current_epoch, trainer.global_step) == (5, 10)


def test_weights_without_history_start_at_epoch_zero(tmp_path, loaders):
    weights, ckpt = tmp_path / "init.safetensors", tmp_path / "init.ckpt"
    write_safetensors(weights, TopoQA().state_dict())
    convert("to-lightning", weights, ckpt)
    trainer, probe = resume(ckpt, loaders)
    assert (probe.start_epoch, probe.start_step) == (0, 0)
    assert (trainer.current_epoch, trainer.global_step) == (2, 4)
