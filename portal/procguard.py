"""`python -m portal.procguard COMMAND...`: run COMMAND and take its process group down with it.

Supervisor restarts a program that exits and stops a program's whole process group on shutdown, but when a
program's main process dies on its own (SIGKILL, a crash) the children it forked — RQ's work horse (in a
session of its own) and its scheduler process, which holds the queue's scheduler lock — would live on as
orphans. This guard runs COMMAND, passes on SIGTERM and SIGINT, adopts the orphans of its tree (a child
subreaper), and once COMMAND has exited, for any reason, asks every process below it to stop (SIGTERM: RQ's
scheduler then releases its lock), then kills what is left.
If the guard itself is killed, Linux tells COMMAND (SIGTERM, through PR_SET_PDEATHSIG); if supervisor is, the
guard is told the same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time

GRACE_SECONDS = 5.0
# From <sys/prctl.h>.
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    """Linux's prctl(2); nothing happens where there is none."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl(option, value)


def die_with_parent() -> None:
    """Ask Linux to send SIGTERM to the calling process when its parent dies."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _descendants() -> list[int]:
    """The live processes below the guard (from /proc). As a child subreaper, the guard adopts every orphan of
    its tree, even one that left the process group (RQ's work horse starts a session of its own)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _stop_descendants() -> None:
    """SIGTERM every process below the guard, give them a moment, then SIGKILL the stragglers."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the guard itself stays to finish the job
    for pid in _descendants():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline:
        _reap()
        if not _descendants():
            return
        time.sleep(0.1)
    for pid in _descendants():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    _reap()


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m portal.procguard COMMAND...", file=sys.stderr)
        return 2
    if os.getpgrp() != os.getpid():
        os.setpgrp()  # lead a group of our own, whoever started us
    die_with_parent()  # supervisor killed outright: stop too, and take the group along
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of our tree become our children, not init's
    child = subprocess.Popen(argv, preexec_fn=die_with_parent)  # the hook only calls prctl before exec

    def forward(signum, _frame):
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
    _stop_descendants()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
