"""The guard every `runportal` program runs under: when the program dies, its whole tree goes with it."""

import os
import signal
import subprocess
import sys

import pytest

from tests.processes import ROOT, alive, descendants, wait_until

pytestmark = pytest.mark.faults

# A program that starts a helper in a session of its own (as RQ's work horse does), then waits.
PROGRAM = (
    "import subprocess, sys, time; helper = subprocess.Popen(['sleep', '300'], start_new_session=True); "
    "print(helper.pid, flush=True); time.sleep(300)"
)


@pytest.fixture
def guarded():
    """The guard, its program and the program's helper; whatever a failing test leaves alive is killed after it."""
    guard = subprocess.Popen(
        [sys.executable, "-m", "portal.procguard", sys.executable, "-c", PROGRAM],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    helper = int(guard.stdout.readline())
    (program,) = descendants(guard.pid) - {helper}
    yield guard, program, helper
    for pid in (guard.pid, program, helper):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    guard.wait(timeout=5)
    guard.stdout.close()


def test_a_program_killed_takes_its_helpers_down_and_the_guard_exits(guarded):
    guard, program, helper = guarded
    os.kill(program, signal.SIGKILL)
    assert guard.wait(timeout=10) == 128 + signal.SIGKILL
    assert not alive(helper)


def test_the_guard_passes_sigterm_on_and_leaves_nothing(guarded):
    guard, program, helper = guarded
    guard.send_signal(signal.SIGTERM)
    guard.wait(timeout=10)
    wait_until(lambda: not alive(program) and not alive(helper), 5, "the program and its helper to end")


def test_a_guard_killed_outright_does_not_leave_its_program_behind(guarded):
    guard, program, _helper = guarded
    os.kill(guard.pid, signal.SIGKILL)
    guard.wait(timeout=5)
    # Told by PR_SET_PDEATHSIG; a helper in its own session is the program's to stop, so the fixture tidies it.
    wait_until(lambda: not alive(program), 5, "the program to end")
