"""Deterministic fault hooks for tests: make a process die or block at a named point, instead of racing it.

    TOPOQA_FAULT=<point>[@<subject>]:<action>[,...]     TOPOQA_FAULT_MARKER=<file>

`point` is a name the code passes to `fault_point` (e.g. `worker-start`, `before-topology`); `subject`, when
given, must occur in the subject the code passes (a complex's name), so one marked input can be singled out.
Actions:
- `die`: SIGKILL this process (what an out-of-memory kill or a crash in native code does);
- `die-once`: the same, but only in the first process to get there: it creates the marker file, exclusively;
- `block`: write this process's id to the marker file, then wait for a signal forever (a test waits until
  the marker exists, which is an observable state, then interrupts or kills).
Unset, a hook costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "TOPOQA_FAULT"
MARKER_ENV = "TOPOQA_FAULT_MARKER"
ACTIONS = ("die", "die-once", "block")


def fault_point(point: str, subject: str = "") -> None:
    """Act on TOPOQA_FAULT when it names `point` (and a subject that occurs in `subject`); otherwise nothing."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    for entry in spec.split(","):
        where, _, action = entry.strip().rpartition(":")
        name, _, wanted = where.partition("@")
        if name != point or (wanted and wanted not in subject):
            continue
        if action not in ACTIONS:
            raise ValueError(f"{FAULT_ENV}={spec!r}: unknown action {action!r} (expected {', '.join(ACTIONS)})")
        act(action)


def act(action: str) -> None:
    marker = os.environ.get(MARKER_ENV)
    if action == "die-once":
        if marker is None:
            raise ValueError(f"{FAULT_ENV}: die-once needs {MARKER_ENV}")
        try:
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            return  # another process has died here already
    if action in ("die", "die-once"):
        os.kill(os.getpid(), signal.SIGKILL)
    if marker is not None:
        temporary = f"{marker}.{os.getpid()}.tmp"
        with open(temporary, "w") as handle:
            handle.write(f"{os.getpid()}\n")
        os.replace(temporary, marker)  # whole, so a reader never sees an empty file
    while True:
        signal.pause()
