"""The guard every `runportal` program runs under: when the program dies, its whole tree goes with it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.processes import ROOT

pytestmark = pytest.mark.faults

# A program that starts a helper in a session of its own (as RQ's work horse does), then waits.
PROGRAM = (
    "import subprocess, sys, time; helper = subprocess.Popen(['sleep', '300'], start_new_session=True); "
    "print(helper.pid, flush=True); time.sleep(300)"
)


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_guarded() -> tuple[subprocess.Popen, int, int]:
    guard = subprocess.Popen(
        [sys.executable, "-m", "portal.procguard", sys.executable, "-c", PROGRAM],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    helper = int(guard.stdout.readline())
    program = next(
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit() and Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1] == str(guard.pid)
    )
    return guard, program, helper


def test_a_program_killed_takes_its_helpers_down_and_the_guard_exits():
    guard, program, helper = start_guarded()
    os.kill(program, signal.SIGKILL)
    assert guard.wait(timeout=10) == 128 + signal.SIGKILL
    assert not alive(helper)


def test_the_guard_passes_sigterm_on_and_leaves_nothing():
    guard, program, helper = start_guarded()
    guard.send_signal(signal.SIGTERM)
    guard.wait(timeout=10)
    time.sleep(0.2)
    assert not alive(program) and not alive(helper)


def test_a_guard_killed_outright_does_not_leave_its_program_behind():
    guard, program, helper = start_guarded()
    os.kill(guard.pid, signal.SIGKILL)
    guard.wait(timeout=5)
    deadline = time.monotonic() + 5
    while alive(program) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(program)  # told by PR_SET_PDEATHSIG
    os.kill(helper, signal.SIGKILL)  # a helper in its own session is the program's to stop; tidy up here
