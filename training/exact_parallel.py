"""Exact data parallelism: N processes reproduce the one-process run bit for bit.

Inside one accumulation window the weights do not change, so each batch's gradient depends only on the weights,
the batch and the dropout masks the one-process run draws for it. The one-process run's accumulated gradient is
the float32 sum g1 + g2 + ... + gK in batch order (autograd stores the first and adds the rest in place). Here:

- each window's batches are cut into contiguous runs, one per process, of similar cost (`BatchPlan`);
- every process walks every batch in order: its own ones it computes, the others' it only *replays*: it makes
  the same dropout calls on tensors of the same shape (`replay_dropout`), so its random stream stays the
  one-process stream (the DataLoader iterator's draw per pass is made by walking the real loader);
- the first process of a window accumulates through autograd as one process would; later ones keep each
  batch's gradient apart; the running sum travels along the processes in order and each adds its batches one
  at a time, in place; the last broadcasts the sum, and every process takes the same Adam step
  (`GradientChain.finish_window`). An all-reduce (what DDP does) would sum in another order;
- each batch's loss is divided by accumulate_grad_batches before its backward pass, as in one process (dividing
  the summed gradient afterwards rounds differently unless the divisor is a power of two);
- parameters that get no gradient (conv3, never used in forward) keep `.grad = None`, as in one process; a
  process without a batch in a window (windows shorter than N) is left out of the chain, not sent zeros;
- the broadcast carries a fingerprint of the sender's random-generator state: a process whose stream went
  astray stops the run instead of training on silently different numbers.

With one process nothing is exchanged: the loop is the plain one-process loop.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

FINGERPRINT_SLOTS = 4  # 16 bits each, exact in float32: a 64-bit fingerprint of the random-generator state


def split_by_cost(costs: list[float], parts: int) -> list[range]:
    """Cut items 0..len-1 into `parts` contiguous runs in order, each of about total/parts cost (runs may be
    empty when there are fewer items than parts). Boundaries fall where the running cost is nearest j/parts."""
    total = sum(costs)
    bounds, running, index = [0], 0.0, 0
    for part in range(1, parts):
        target = total * part / parts
        while index < len(costs) and abs(running + costs[index] - target) <= abs(running - target):
            running += costs[index]
            index += 1
        bounds.append(index)
    bounds.append(len(costs))
    return [range(bounds[part], bounds[part + 1]) for part in range(parts)]


def batch_costs(dataset: Dataset, batch_size: int) -> list[float]:
    """Relative compute cost of each batch in order: its edges plus its nodes (the attention and the edge
    update work per edge, the linear layers per node)."""
    costs = []
    for start in range(0, len(dataset), batch_size):
        graphs = [dataset[index] for index in range(start, min(start + batch_size, len(dataset)))]
        costs.append(float(sum(graph.edge_index.size(1) + graph.x.size(0) for graph in graphs)))
    return costs


@dataclass
class BatchPlan:
    """Which process computes which batch of an epoch, and where the accumulation windows end."""

    owners: list[int]  # process of each batch
    windows: list[range]  # batch indices of each window, in order
    window_index: list[int]  # window of each batch

    @classmethod
    def build(cls, costs: list[float], window: int, processes: int) -> BatchPlan:
        """Windows of `window` batches (the last one may be shorter), each cut into contiguous per-process runs."""
        owners: list[int] = []
        window = max(window, 1)
        windows = [range(start, min(start + window, len(costs))) for start in range(0, len(costs), window)]
        for batches in windows:
            runs = split_by_cost([costs[index] for index in batches], processes)
            owners += [process for process, run in enumerate(runs) for _ in run]
        return cls(owners, windows, [number for number, batches in enumerate(windows) for _ in batches])

    def active(self, window: range) -> list[int]:
        """Processes with at least one batch in the window, in chain order (each owns a contiguous run)."""
        return sorted({self.owners[index] for index in window})


def replay_dropout(model: torch.nn.Module, num_edges: int, device: torch.device) -> None:
    """Draw from the random generators exactly what one training forward pass of a batch with `num_edges`
    edges draws, without computing it. Mirrors TopoQA.forward: conv1 then conv2 each drop out their attention
    coefficients, a [edges, heads] float32 tensor, with F.dropout (same function, so the same early returns and
    the same generator use on CPU and CUDA)."""
    with torch.no_grad():
        for conv in (model.conv1[0], model.conv2[0]):
            attention = torch.empty((num_edges, conv.heads), dtype=torch.float32, device=device)
            F.dropout(attention, p=conv.dropout, training=True)


def rng_fingerprint() -> list[float]:
    """The torch CPU (and current CUDA) generator state as FINGERPRINT_SLOTS exact float32 values."""
    state = torch.get_rng_state().numpy().tobytes()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state += torch.cuda.get_rng_state().numpy().tobytes()
    value = int.from_bytes(hashlib.blake2b(state, digest_size=8).digest(), "little")
    return [float((value >> (16 * slot)) & 0xFFFF) for slot in range(FINGERPRINT_SLOTS)]


class RandomStreamDiverged(RuntimeError):
    """This process's random stream is no longer the one-process run's: training on would change the numbers."""


class ProcessLost(RuntimeError):
    """Another process of the run is gone (it died or was killed), found while exchanging with it."""


@contextmanager
def other_processes_alive(process: int) -> Iterator[None]:
    """Turn the communication backend's error about a vanished peer (gloo: "Connection closed by peer") into
    ProcessLost, which train.py reports in one line instead of a traceback."""
    try:
        yield
    except RandomStreamDiverged:
        raise
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ProcessLost(f"process {process} lost contact with another process of the run ({first_line})") from None


class GradientChain:
    """Sums one window's per-batch gradients over processes in the one-process order (see the module doc).

    The message is one flat float32 buffer: every parameter's gradient (zeros where it has none), one
    has-gradient flag per parameter, then the sender's random-stream fingerprint.
    """

    def __init__(self, parameters: list[Tensor], process: int, processes: int, device: torch.device) -> None:
        self.parameters = parameters
        self.process, self.processes, self.device = process, processes, device
        self.sizes = [parameter.numel() for parameter in parameters]
        self.offsets = [sum(self.sizes[:index]) for index in range(len(parameters))]
        self.flags_at = sum(self.sizes)
        self.fingerprint_at = self.flags_at + len(parameters)
        self.kept: list[list[Tensor | None]] = []  # this process's per-batch gradients, when not first

    def after_backward(self, first_process: bool) -> None:
        """After one batch's backward: the window's first process lets autograd accumulate; any other keeps
        this batch's gradient apart, to add it into the running sum in order."""
        if not first_process:
            self.kept.append([parameter.grad for parameter in self.parameters])
            for parameter in self.parameters:
                parameter.grad = None

    def finish_window(self, active: list[int]) -> None:
        """Leave every process's `.grad` equal to the one-process run's accumulated gradient for the window."""
        if self.processes == 1:
            return
        with other_processes_alive(self.process):
            self._exchange(active)

    def _exchange(self, active: list[int]) -> None:
        buffer = torch.zeros(self.fingerprint_at + FINGERPRINT_SLOTS, dtype=torch.float32, device=self.device)
        last = active[-1]
        if self.process in active:
            position = active.index(self.process)
            if position == 0:
                has_gradient = [False] * len(self.parameters)
                self._add(buffer, has_gradient, [parameter.grad for parameter in self.parameters])
            else:
                dist.recv(buffer, src=active[position - 1])  # blocking: the buffer is ours again on return
                has_gradient = [flag != 0 for flag in buffer[self.flags_at:self.fingerprint_at].tolist()]
                for gradients in self.kept:
                    self._add(buffer, has_gradient, gradients)
            buffer[self.flags_at:self.fingerprint_at] = torch.tensor(has_gradient, dtype=torch.float32)
            if self.process != last:
                dist.send(buffer, dst=active[position + 1])  # blocking: never reused before it is sent
            else:
                buffer[self.fingerprint_at:] = torch.tensor(rng_fingerprint(), dtype=torch.float32)
        self.kept = []
        dist.broadcast(buffer, src=last)
        if buffer[self.fingerprint_at:].tolist() != rng_fingerprint():
            raise RandomStreamDiverged(
                f"process {self.process}: its random stream differs from process {last}'s after an accumulation "
                "window; the run would no longer equal the one-process run"
            )
        self._unpack(buffer)

    def _add(self, buffer: Tensor, has_gradient: list[bool], gradients: list[Tensor | None]) -> None:
        """buffer += one batch's gradients, per parameter, as autograd accumulates into `.grad`: the first is
        copied, the next are added in place; a parameter without a gradient stays without."""
        for index, gradient in enumerate(gradients):
            if gradient is None:
                continue
            segment = buffer[self.offsets[index]:self.offsets[index] + self.sizes[index]]
            if has_gradient[index]:
                segment += gradient.reshape(-1)
            else:
                segment.copy_(gradient.reshape(-1))
                has_gradient[index] = True

    def _unpack(self, buffer: Tensor) -> None:
        flags = buffer[self.flags_at:self.fingerprint_at].tolist()
        for index, parameter in enumerate(self.parameters):
            if flags[index]:
                segment = buffer[self.offsets[index]:self.offsets[index] + self.sizes[index]]
                parameter.grad = segment.view_as(parameter).clone()
            else:
                parameter.grad = None


def sum_over_processes(values: Tensor, processes: int) -> Tensor:
    """Element-wise sum over processes of vectors in which each entry is non-zero on at most one process
    (per-batch values filled in by the batch's owner): exact, whatever the summation order."""
    if processes > 1:
        with other_processes_alive(dist.get_rank()):
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values
