"""The processes of a scoring run: which share of the inputs each one takes, and what they tell each other.

`accelerate launch` (torchrun underneath) starts the processes and gives each its place in the environment
(RANK, WORLD_SIZE, LOCAL_WORLD_SIZE); `python infer.py` is one process. The share is decided from the environment
alone, before torch is imported, so that featurisation starts at once; accelerate's PartialState then connects
the processes (gloo on the CPU, NCCL on GPUs) for the barrier and the gather at the end.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from data.featurize import file_size

if TYPE_CHECKING:
    from accelerate import PartialState

# A process that has finished its share waits at the final gather for the slowest one: with the default timeout
# (30 minutes) an uneven screen would fail there. A crashed process is noticed by the launcher, not by this.
WAIT_FOR_OTHERS = timedelta(days=7)


@dataclass(frozen=True)
class ProcessPlace:
    index: int  # 0 .. count-1; 0 is the main process, which writes the outputs
    count: int
    local_count: int  # processes on this machine (they share its CPUs)

    @property
    def is_main(self) -> bool:
        return self.index == 0


def launched_place() -> ProcessPlace:
    """This process's place, from the launcher's environment (torch-free); one process when not launched."""
    count = int(os.environ.get("WORLD_SIZE", "1"))
    index = int(os.environ.get("RANK", "0"))
    local_count = int(os.environ.get("LOCAL_WORLD_SIZE", str(count)))
    return ProcessPlace(index, count, local_count)


def share(paths: list[Path], index: int, count: int) -> list[Path]:
    """The inputs process `index` of `count` scores: largest files dealt out first, one to each process in turn,
    so every process gets a like amount of work. The same inputs give the same shares in every process."""
    if count == 1:
        return list(paths)
    dealt = sorted(range(len(paths)), key=lambda k: (-file_size(paths[k]), str(paths[k])))
    return [paths[k] for k in sorted(dealt[index::count])]


def connect_processes(place: ProcessPlace, cpu: bool) -> PartialState:
    """accelerate's PartialState, checked against the place the launcher gave (imports torch)."""
    from accelerate import PartialState

    state = PartialState(cpu=cpu, timeout=WAIT_FOR_OTHERS)
    if (state.process_index, state.num_processes) != (place.index, place.count):
        raise RuntimeError(f"accelerate says process {state.process_index} of {state.num_processes}, the "
                           f"environment {place.index} of {place.count}")
    return state


class RunProgress:
    """One progress bar for the whole run, on the main process: every process reports each complex it finishes.

    The other processes send their counts to the main one over a gloo group of their own (so it works between
    machines and beside NCCL), where a thread receives them; a count of -1 says a process is done.
    """

    def __init__(self, state: PartialState, total: int, finished_before: int, show: bool = True) -> None:
        self._state = state
        self._group = None
        self._bar = None
        self._lock = threading.Lock()
        if state.num_processes > 1:
            import torch.distributed as dist

            self._group = dist.new_group(backend="gloo", timeout=WAIT_FOR_OTHERS)
        if state.is_main_process:
            self._bar = tqdm(total=total, initial=finished_before, desc="scoring", unit="complex", disable=not show)
            if self._group is not None:
                self._listener = threading.Thread(target=self._listen, name="progress", daemon=True)
                self._listener.start()

    def advance(self) -> None:
        if self._bar is not None:
            with self._lock:
                self._bar.update()
        else:
            self._send(1)

    def close(self) -> None:
        if self._bar is None:
            self._send(-1)
            return
        if self._group is not None:
            self._listener.join()
        self._bar.close()

    def _send(self, count: int) -> None:
        import torch
        import torch.distributed as dist

        dist.send(torch.tensor([count], dtype=torch.int64), dst=0, group=self._group)

    def _listen(self) -> None:
        import torch
        import torch.distributed as dist

        message = torch.zeros(1, dtype=torch.int64)
        running = self._state.num_processes - 1
        while running:
            dist.recv(message, group=self._group)
            if message.item() < 0:
                running -= 1
            else:
                with self._lock:
                    self._bar.update(int(message.item()))
