"""Exact data-parallel training (training/exact_parallel.py): `accelerate launch --num_processes N train.py`
must reproduce the one-process run bit for bit (metrics.csv bytes, every checkpoint's weights and Adam state,
the top-3 checkpoint names), and Lightning's own Trainer on the same machine.

Small generated graph sets (training/synthetic_graphs.py), CPU processes over gloo; no reference files needed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch_geometric.data import Batch

from data.faults import FAULT_ENV
from model.topoqa import TopoQA
from tests.conftest import REPO_ROOT
from tests.test_train_helpers import (
    checkpoint_names,
    load_checkpoint,
    run_lightning,
    run_python,
    run_train,
    write_labels,
)
from training.exact_parallel import BatchPlan, GradientChain, RandomStreamDiverged, replay_dropout, split_by_cost
from training.synthetic_graphs import write_synthetic_set

# Safety net only: a launch takes seconds; a hang would take this long to fail instead of forever.
LAUNCH_TIMEOUT = 600


def free_port() -> int:
    """A port for the processes' rendezvous (not accelerate's fixed default: other test runs may hold it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_command(processes: int, arguments: list) -> list[str]:
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", "accelerate_config/exact_parallel.yaml", "--num_processes", str(processes),
        "--main_process_port", str(free_port()), "train.py", "--cpu", *map(str, arguments),
    ]  # fmt: skip


def run_exact(processes: int, *arguments) -> subprocess.CompletedProcess:
    """train.py in exact mode: `python train.py` for one process, `accelerate launch` for several."""
    if processes == 1:
        return run_train(*arguments)
    return run_python(*launch_command(processes, list(arguments))[1:], timeout=LAUNCH_TIMEOUT)


def assert_same_run(ours: Path, theirs: Path, theirs_metrics: Path | None = None) -> None:
    """Same metrics.csv bytes, same checkpoint files, each with equal weights, Adam state and counters."""
    assert (ours / "metrics.csv").read_bytes() == (theirs_metrics or theirs / "metrics.csv").read_bytes()
    assert checkpoint_names(ours) == checkpoint_names(theirs)
    assert len([name for name in checkpoint_names(ours) if name.startswith("topo_epoch=")]) == 3
    for name in checkpoint_names(theirs):
        mine, other = load_checkpoint(ours / name), load_checkpoint(theirs / name)
        assert (mine["epoch"], mine["global_step"]) == (other["epoch"], other["global_step"]), name
        assert list(mine["state_dict"]) == list(other["state_dict"])
        for key, tensor in other["state_dict"].items():
            assert torch.equal(mine["state_dict"][key], tensor), (name, key)  # max abs difference 0
        adam_mine, adam_other = mine["optimizer_states"][0], other["optimizer_states"][0]
        assert adam_mine["param_groups"] == adam_other["param_groups"]
        assert list(adam_mine["state"]) == list(adam_other["state"])
        assert len(adam_mine["state"]) == 30  # conv3 never gets a gradient, so no Adam state
        for index, entry in adam_other["state"].items():
            for field, value in entry.items():
                assert torch.equal(adam_mine["state"][index][field], value), (name, index, field)
        assert mine["loops"] == other["loops"], name


@pytest.fixture(scope="module")
def graph_set(tmp_path_factory) -> tuple[Path, list[str]]:
    folder = tmp_path_factory.mktemp("exact_graphs")
    write_synthetic_set(folder, count=100, seed=23, min_nodes=16, max_nodes=56)
    return folder / "graphs", sorted(path.stem for path in (folder / "graphs").glob("*.pt"))


def arguments(folder: Path, graph_dir: Path, train: list[str], val: list[str], **settings) -> list:
    data = {
        "graph_dir": graph_dir,
        "train_label_file": write_labels(folder / "train.csv", train),
        "val_label_file": write_labels(folder / "val.csv", val),
    }
    return [item for key, value in {**data, **settings}.items() for item in (f"--{key}", value)]


# A: 10 training batches of 4 in windows of 3 (3, 3, 3, 1: not divisible by 2 or 3; the last, partial
# window has fewer batches than processes); 2 validation batches (4, 2): fewer than 3 processes.
SETTINGS_A = {"batch_size": 4, "accumulate_grad_batches": 3, "learning_rate": 0.004, "num_epochs": 4, "seed": 5}
# B: 12 training batches of 4 in windows of 7 and 5, graphs in reverse order; validation 4, 4, 1.
SETTINGS_B = {"batch_size": 4, "accumulate_grad_batches": 7, "learning_rate": 0.006, "num_epochs": 3, "seed": 31}


@pytest.fixture(scope="module")
def config_a(graph_set, tmp_path_factory) -> tuple[list, Path]:
    """(train.py arguments, the one-process run's folder) for configuration A."""
    graph_dir, names = graph_set
    folder = tmp_path_factory.mktemp("config_a")
    args = arguments(folder, graph_dir, names[:40], names[40:46], **SETTINGS_A)
    run_exact(1, *args, "--save_dir", folder / "one")
    return args, folder / "one"


@pytest.fixture(scope="module")
def config_b(graph_set, tmp_path_factory) -> tuple[list, Path]:
    graph_dir, names = graph_set
    folder = tmp_path_factory.mktemp("config_b")
    args = arguments(folder, graph_dir, names[::-1][:48], names[50:59], **SETTINGS_B)
    run_exact(1, *args, "--save_dir", folder / "one")
    return args, folder / "one"


@pytest.mark.parametrize("config, settings", [("config_a", SETTINGS_A), ("config_b", SETTINGS_B)])
def test_one_process_equals_lightning(graph_set, config, settings, request, tmp_path):
    """The oracle the parallel runs are held to is itself Lightning's run, bit for bit."""
    graph_dir, _ = graph_set
    _, one = request.getfixturevalue(config)
    run_lightning(
        tmp_path / "lightning", graph_dir=graph_dir, train_label_file=one.parent / "train.csv",
        val_label_file=one.parent / "val.csv", **settings,
    )  # fmt: skip
    assert_same_run(one, tmp_path / "lightning", tmp_path / "lightning" / "logs" / "version_0" / "metrics.csv")


@pytest.mark.parametrize("processes", [2, 3])
def test_parallel_equals_one_process_config_a(config_a, processes, tmp_path):
    args, one = config_a
    run_exact(processes, *args, "--save_dir", tmp_path / "run")
    assert_same_run(tmp_path / "run", one)
    session = json.loads((tmp_path / "run" / "environment.json").read_text())["sessions"][0]
    assert (session["num_processes"], session["parallel_mode"]) == (processes, "exact")
    assert session["parallel"].startswith("exact: the one-process run's numbers")


@pytest.mark.parametrize("processes", [2, 3])
def test_parallel_equals_one_process_config_b(config_b, processes, tmp_path):
    args, one = config_b
    run_exact(processes, *args, "--save_dir", tmp_path / "run")
    assert_same_run(tmp_path / "run", one)


def test_resume_with_another_number_of_processes(config_a, tmp_path):
    """Stop after epoch 1 with 2 processes, resume with 3: the uninterrupted one-process run, bit for bit."""
    args, one = config_a
    run_exact(2, *args, "--save_dir", tmp_path / "run", "--stop_after_epoch", 1)
    assert load_checkpoint(tmp_path / "run" / "topo_last.ckpt")["epoch"] == 1
    resumed = run_exact(3, *args, "--save_dir", tmp_path / "run", "--resume")
    assert "resuming after epoch 1" in resumed.stdout
    assert_same_run(tmp_path / "run", one)
    sessions = json.loads((tmp_path / "run" / "environment.json").read_text())["sessions"]
    assert [(session["start_epoch"], session["num_processes"]) for session in sessions] == [(0, 2), (2, 3)]


def test_a_dying_process_ends_the_run_and_resume_continues_exactly(config_a, tmp_path):
    """Process 1 is killed (SIGKILL, a fault hook: no race) at its first batch of epoch 2; the launcher
    ends the whole run, naming the dead process, instead of leaving process 0 waiting for it forever."""
    args, one = config_a
    save_dir = tmp_path / "run"
    environment = {**os.environ, "TQDM_DISABLE": "1", FAULT_ENV: "train-batch@process=1 epoch=2 :die"}
    killed = subprocess.run(
        launch_command(2, [*args, "--save_dir", save_dir]), cwd=REPO_ROOT, env=environment,
        capture_output=True, text=True, timeout=LAUNCH_TIMEOUT,
    )  # fmt: skip
    assert killed.returncode != 0
    assert "rank      : 1" in killed.stderr and "SIGKILL" in killed.stderr, killed.stderr[-3000:]
    # Process 0 says why it stopped and what to do, whether it noticed first (a lost connection) or the launcher.
    assert "another process of the run" in killed.stderr and "with --resume" in killed.stderr, killed.stderr[-3000:]
    assert load_checkpoint(save_dir / "topo_last.ckpt")["epoch"] == 1
    resumed = run_exact(2, *args, "--save_dir", save_dir, "--resume")
    assert "resuming after epoch 1" in resumed.stdout
    assert_same_run(save_dir, one)


def test_resume_refuses_to_switch_to_ddp(config_a):
    args, one = config_a
    refused = run_train(*args, "--save_dir", one, "--resume", "--parallel", "ddp", check=False)
    assert refused.returncode != 0
    assert "parallel mode: exact -> ddp" in refused.stderr


def test_split_by_cost_is_contiguous_balanced_and_may_leave_processes_idle():
    assert split_by_cost([1, 1, 1, 1, 1, 1], 3) == [range(0, 2), range(2, 4), range(4, 6)]
    assert split_by_cost([5, 1, 1, 1, 1, 1], 2) == [range(0, 1), range(1, 6)]
    assert split_by_cost([1], 3) == [range(0, 0), range(0, 1), range(1, 1)]
    assert split_by_cost([], 2) == [range(0, 0), range(0, 0)]
    plan = BatchPlan.build([1.0] * 10, window=3, processes=2)
    assert plan.windows == [range(0, 3), range(3, 6), range(6, 9), range(9, 10)]
    assert plan.owners == [0, 0, 1, 0, 0, 1, 0, 0, 1, 0]  # within each window, contiguous and in order
    assert plan.active(plan.windows[-1]) == [0]


def test_replay_draws_what_a_training_forward_draws(graph_set):
    """The replay of a batch leaves the random generator where a real training forward pass leaves it."""
    from model.graph_io import load_graph

    graph_dir, names = graph_set
    batch = Batch.from_data_list([load_graph(graph_dir / f"{name}.pt") for name in names[:5]])
    model = TopoQA().train()
    torch.manual_seed(3)
    model(batch.x, batch.edge_index, batch.edge_attr, batch.batch)
    after_forward = torch.get_rng_state()
    torch.manual_seed(3)
    replay_dropout(model, batch.edge_index.size(1), torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), after_forward)
    torch.manual_seed(3)
    replay_dropout(model, batch.edge_index.size(1) - 1, torch.device("cpu"))  # one edge off: another stream
    assert not torch.equal(torch.get_rng_state(), after_forward)


# Five batches' gradients for three parameters (the last never gets one, like conv3), with magnitudes from 1e-4
# to 1e4 so that float32 sums in another order round differently.
OWNERS = [0, 0, 1, 1, 2]


def batch_gradients() -> list[list[torch.Tensor | None]]:
    generator = torch.Generator().manual_seed(0)
    scale = lambda shape: torch.exp(torch.randn(shape, generator=generator) * 4)  # noqa: E731
    return [[torch.randn(6, 7, generator=generator) * scale((6, 7)), torch.randn(5, generator=generator) * scale(5),
             None] for _ in OWNERS]  # fmt: skip


def one_process_sum() -> list[torch.Tensor]:
    """What autograd leaves in .grad after the five backward passes: the first stored, the rest added in place."""
    total = [gradient.clone() for gradient in batch_gradients()[0][:2]]
    for gradients in batch_gradients()[1:]:
        for kept, gradient in zip(total, gradients[:2], strict=True):
            kept += gradient
    return total


def _chain_worker(rank: int, port: int, results) -> None:
    """Two windows of the same five batches: in the second, process 1 has drawn one random number too many."""
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    dist.init_process_group("gloo", rank=rank, world_size=3)
    parameters = [torch.zeros(6, 7), torch.zeros(5), torch.zeros(2)]
    chain = GradientChain(parameters, rank, 3, torch.device("cpu"))
    torch.manual_seed(1)
    for window in ("in order", "diverged"):
        for batch, gradients in enumerate(batch_gradients()):
            if OWNERS[batch] != rank:
                continue
            for parameter, gradient in zip(parameters, gradients, strict=True):  # what a backward pass does
                if gradient is not None:
                    parameter.grad = gradient.clone() if parameter.grad is None else parameter.grad.add_(gradient)
            chain.after_backward(first_process=rank == 0)
        if window == "diverged" and rank == 1:
            torch.rand(1)  # one draw too many: this process's random stream is no longer the others'
        try:
            chain.finish_window(active=[0, 1, 2])
            # As NumPy arrays: pickled by value (tensors would be shared through handles that die with this process).
            results.put((window, rank, [None if p.grad is None else p.grad.numpy().copy() for p in parameters]))
        except RandomStreamDiverged as error:
            results.put((window, rank, str(error)))
        for parameter in parameters:
            parameter.grad = None
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def chain_results() -> dict:
    """{(window, process): the gradients after finish_window, or the divergence message} from 3 gloo processes."""
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    mp.start_processes(_chain_worker, args=(free_port(), results), nprocs=3, start_method="spawn")
    return {(window, rank): value for window, rank, value in (results.get() for _ in range(6))}


def test_gradient_chain_sums_in_the_one_process_order(chain_results):
    expected = one_process_sum()
    gradients = batch_gradients()
    per_parameter = zip(*[batch[:2] for batch in gradients], strict=True)
    pairwise = [(g0 + g1) + ((g2 + g3) + g4) for g0, g1, g2, g3, g4 in per_parameter]  # a tree, as all-reduce sums
    assert not all(torch.equal(a, b) for a, b in zip(pairwise, expected, strict=True))  # the order matters here
    for rank in range(3):
        result = chain_results[("in order", rank)]
        for index in (0, 1):
            assert torch.equal(torch.from_numpy(result[index]), expected[index]), (rank, index)
        assert result[2] is None, rank  # a parameter without gradient stays without, never zeros


def test_gradient_chain_stops_a_process_whose_random_stream_diverged(chain_results):
    assert "random stream differs" in chain_results[("diverged", 1)]
    # The others match the sender (process 2, the last of the chain) and carry on.
    assert not isinstance(chain_results[("diverged", 0)], str) and not isinstance(chain_results[("diverged", 2)], str)
