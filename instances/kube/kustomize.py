"""The Kustomize runner: the only place that knows how to call the binary."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

DEFAULT_TIMEOUT = 60.0
# Enough of stderr to show Kustomize's own error (it prints it last), not a page of noise.
STDERR_TAIL_CHARS = 2000


class KustomizeError(Exception):
    """`kustomize build` could not run or failed; `stderr` holds the tail of its error output."""

    def __init__(self, message: str, *, stderr: str = "", returncode: int | None = None):
        self.stderr = stderr
        self.returncode = returncode
        super().__init__(message)


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= STDERR_TAIL_CHARS else "…" + text[-STDERR_TAIL_CHARS:]


class Kustomize:
    """Runs `kustomize build` (or `kubectl kustomize` when no standalone binary is on PATH).

    The command is chosen once, at construction; pass `command` to force one (e.g. in tests or when the
    binary lives outside PATH). Every build has a timeout so a stuck process cannot hold a worker.
    """

    def __init__(self, command: Sequence[str] | None = None, *, timeout: float = DEFAULT_TIMEOUT):
        self.command: tuple[str, ...] = tuple(command) if command else self.default_command()
        self.timeout = timeout

    @staticmethod
    def default_command() -> tuple[str, ...]:
        """`kustomize build` if the standalone binary is on PATH, else `kubectl kustomize`."""
        if path := shutil.which("kustomize"):
            return (path, "build")
        if path := shutil.which("kubectl"):
            return (path, "kustomize")
        raise KustomizeError("Neither `kustomize` nor `kubectl` was found on PATH; cannot render manifests.")

    def build(self, directory: str | os.PathLike[str]) -> str:
        """Render the kustomization in `directory` and return the multi-document YAML."""
        args = [*self.command, os.fspath(Path(directory))]
        try:
            completed = subprocess.run(args, capture_output=True, text=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
            raise KustomizeError(
                f"`{' '.join(args)}` timed out after {self.timeout:g}s.", stderr=_tail(stderr)
            ) from exc
        except OSError as exc:
            raise KustomizeError(f"`{' '.join(args)}` could not be started: {exc}") from exc
        if completed.returncode != 0:
            stderr = _tail(completed.stderr)
            raise KustomizeError(
                f"`{' '.join(args)}` failed with exit code {completed.returncode}: {stderr or '(no error output)'}",
                stderr=stderr,
                returncode=completed.returncode,
            )
        return completed.stdout
