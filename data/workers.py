"""Featurisation worker processes: how they start and how they stop."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys

from data.dssp import stop_running_dssp


def prepare_worker() -> None:
    """Initializer of every featurisation worker process (complex workers and alpha-complex helpers).

    Processes forked from one whose OpenMP team exists must never enter it (it deadlocks, as in PyTorch's
    DataLoader workers, which do the same). Featurisation never imports torch itself: only a parent that had
    imported it can have started that team, and importing it here would cost seconds.

    Ctrl-C reaches the whole process group and the parent reports it: a worker stops quietly, without a
    traceback of its own, taking its helpers and its mkdssp run with it; so does SIGTERM, which the parent
    sends when only it was interrupted.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    signal.signal(signal.SIGINT, stop_worker)
    signal.signal(signal.SIGTERM, stop_worker)


def stop_worker(signum: int, frame: object) -> None:
    ignore_interrupts()  # a second signal (Ctrl-C, then the parent's SIGTERM) must not re-enter
    stop_children()
    os._exit(128 + signum)


def ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def stop_children() -> None:
    """Stop this process's helpers: multiprocessing children (worker pools) and mkdssp runs (temp files removed)."""
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    stop_running_dssp()
    for child in children:
        child.join(timeout=5)


def exit_on_interrupt(program: str) -> None:
    """In a command's KeyboardInterrupt handler: stop the workers, say so, exit 130 without a traceback."""
    ignore_interrupts()  # a second Ctrl-C while stopping must not end in a traceback
    stop_children()  # the workers, in case only this process was interrupted
    print(f"\n{program}: interrupted; every file it wrote is complete (each is written atomically)", file=sys.stderr)
    sys.stderr.flush()
    os._exit(130)
