"""Featurisation worker processes: how they start and how they stop, and the temporary folder of a run's workers."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from data.dssp import stop_running_dssp
from data.faults import fault_point


def available_cpus() -> int:
    """The CPUs this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def prepare_worker(scratch: str | None = None) -> None:
    """Initializer of every featurisation worker process (pool workers, and the processes that run one complex
    alone).

    Processes forked from one whose OpenMP team exists must never enter it (it deadlocks, as in PyTorch's
    DataLoader workers, which do the same). Featurisation never imports torch itself: only a parent that had
    imported it can have started that team, and importing it here would cost seconds.

    Ctrl-C reaches the whole process group and the parent reports it: a worker stops quietly, without a
    traceback of its own, taking its mkdssp run with it; so does SIGTERM, which the parent sends when only it
    was interrupted (and a process pool when another of its workers died).

    `scratch`: the run's `WorkerScratch` folder, where this process's temporary files (mkdssp's copies) go, so
    that the run removes whatever a killed worker leaves behind.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    signal.signal(signal.SIGINT, stop_worker)
    signal.signal(signal.SIGTERM, stop_worker)
    if scratch is not None:
        tempfile.tempdir = scratch
    fault_point("worker-start")


def stop_worker(signum: int, frame: object) -> None:
    ignore_interrupts()  # a second signal (Ctrl-C, then the parent's SIGTERM) must not re-enter
    stop_running_dssp()
    os._exit(128 + signum)


def ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


_scratch_folders: weakref.WeakSet[WorkerScratch] = weakref.WeakSet()


class WorkerScratch:
    """A temporary folder for the files of one run's workers, removed when the run ends or is interrupted.

    A worker removes its own files when it stops normally or on a signal it can catch; after SIGKILL (out of
    memory) only its parent can, and it does not know which files were the dead worker's.
    """

    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="topoqa-workers-")
        _scratch_folders.add(self)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        _scratch_folders.discard(self)


def stop_children() -> None:
    """Stop this process's worker processes (each kills its mkdssp and removes its copy) and its own mkdssp runs,
    then remove the runs' temporary folders."""
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    stop_running_dssp()
    for child in children:
        child.join(timeout=5)
    for scratch in list(_scratch_folders):
        scratch.remove()


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) back while the block runs, then raise KeyboardInterrupt if it came.

    Importing torch swallows a KeyboardInterrupt raised inside it (measured: a Ctrl-C at any moment of the
    import is lost and the run goes on), so the heavy imports run inside this. Main thread only.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started to ignore it (`cmd &` in a script): do so
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def exit_on_interrupt(program: str) -> None:
    """In a command's KeyboardInterrupt handler: stop the workers, say so, exit 130 without a traceback."""
    ignore_interrupts()  # a second Ctrl-C while stopping must not end in a traceback
    stop_children()  # the workers, in case only this process was interrupted
    print(f"\n{program}: interrupted; every file it wrote is complete (each is written atomically)", file=sys.stderr)
    sys.stderr.flush()
    os._exit(130)
