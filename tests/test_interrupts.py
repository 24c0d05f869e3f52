"""Ctrl-C is never lost: torch's import swallows a KeyboardInterrupt raised inside it, so the commands import
it with interrupts deferred (data.workers.interrupts_deferred) and act on the interrupt afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from data.workers import interrupts_deferred
from tests.conftest import REPO_ROOT, default_sigint


@pytest.fixture
def interruptible():
    """SIGINT handled as in a terminal, whatever this test process inherited (`cmd &` in a script ignores it)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_an_interrupt_inside_the_block_is_raised_after_it_even_if_the_block_swallows_it(interruptible):
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            try:
                os.kill(os.getpid(), signal.SIGINT)  # Python runs the handler at the next instruction
                swallowed = False
            except KeyboardInterrupt:  # what torch's import does with it
                swallowed = True
            assert not swallowed
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_no_interrupt_no_exception(interruptible):
    with interrupts_deferred():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_interrupt_stays_ignored():
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_ctrl_c_during_torch_import_is_raised_after_it(tmp_path):
    # The child says when its import starts; the interrupt lands during the import or just after it, and is
    # raised either way (a plain `import torch` loses it when it lands inside).
    marker = tmp_path / "importing"
    script = (
        "import pathlib, sys\n"
        "from data.workers import interrupts_deferred\n"
        f"pathlib.Path({str(marker)!r}).touch()\n"
        "with interrupts_deferred():\n"
        "    import torch\n"
        "print('went on', flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    deadline = time.monotonic() + 120
    while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # polling an observable state: the child is about to import torch
    assert marker.exists()
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=120)
    assert child.returncode != 0 and "KeyboardInterrupt" in err and "went on" not in out
