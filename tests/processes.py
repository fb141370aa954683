"""Real portal processes for the tests that need them (the fault suite first): a web server, workers, the sandbox,
each on its own database; and the waits with deadlines that go with them."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
POSTGRES = "postgres://postgres@127.0.0.1:5432"
# The fault suite's own Redis database: the rest of the suite uses 15, `make run` 0.
REDIS_URL = "redis://127.0.0.1:6379/13"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_postgres(name: str) -> str:
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{POSTGRES}/{name}"


def drop_postgres(name: str) -> None:
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Portal:
    """The portal's environment for one database: run management commands, start and stop processes."""

    def __init__(self, database_url: str, **settings: str):
        # seed_demo fills a demo registry and runportal serves it: a directory and a port of this portal's own.
        self.directory = tempfile.mkdtemp(prefix="portal-")
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_DEBUG": "1",
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "PORTAL_SANDBOX": "0",
            "PORTAL_LOG_LEVEL": "WARNING",
            "PYTHONIOENCODING": "utf-8",
            "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
            "PORTAL_DEMO_REGISTRY_DIR": str(Path(self.directory) / "registry"),
            "PORTAL_DEMO_REGISTRY_PORT": str(free_port()),
            **settings,
        }
        self.processes: list[subprocess.Popen] = []

    def manage(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        return done.stdout

    def start(self, *args: str, output=subprocess.DEVNULL) -> subprocess.Popen:
        """A long-running ``manage.py`` command in its own session (so that a kill reaches its children too)."""
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, start_new_session=True,
            stdout=output, stderr=subprocess.STDOUT if output is not subprocess.DEVNULL else subprocess.DEVNULL,
        )  # fmt: skip
        self.processes.append(process)
        return process

    def serve(self) -> str:
        port = free_port()
        self.start("runserver", "--noreload", f"127.0.0.1:{port}")
        url = f"http://127.0.0.1:{port}"
        wait_for_http(url + "/health/")
        return url

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        shutil.rmtree(self.directory, ignore_errors=True)


def wait_for_http(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            assert time.monotonic() < deadline, f"{url} did not answer"
            time.sleep(0.2)


def wait_until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def descendants(root: int) -> set[int]:
    """Every live process started, directly or not, by ``root``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
