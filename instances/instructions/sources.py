"""Reading an instruction file from a git repository with the ``git`` command line, and nothing else.

One class owns a remote's configuration, credentials and time limits (:class:`GitRemote`). Each call runs ``git``
in its own process group with a time limit (the whole group is killed when it is exceeded), with no terminal prompt,
no system or user configuration, only the allowed transports, and the credentials handed over by ``GIT_ASKPASS``
from the environment: never on a command line, in a URL, a config file or a message. Every error text is scrubbed of
them anyway, whatever git prints.

A poll first asks for the branch's head (``git ls-remote``, no download); only a new commit is fetched, one commit
deep, into a scratch repository deleted afterwards.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

from django.conf import settings

from core.messages import Message, msg
from instances.instructions.parser import check_size

MAX_MESSAGE = 500
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")
_ASKPASS = """#!/bin/sh
case "$1" in
  Username*|username*) printf '%s\\n' "$PORTAL_GIT_USERNAME" ;;
  *) printf '%s\\n' "$PORTAL_GIT_PASSWORD" ;;
esac
"""
# Branch names and paths are passed to git as arguments: nothing that could be read as an option or a revision range.
_SAFE_REF = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/+-]+$")


class GitError(Exception):
    """Reading the repository failed; ``message`` says why, without any credential."""

    def __init__(self, message: Message):
        self.message = message
        super().__init__(message.english)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` without the given secrets (as typed and URL-encoded) nor any ``user:password@`` of a URL."""
    for secret in sorted({s for s in secrets if s} | {quote(s, safe="") for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    text = _USERINFO.sub(r"\1[redacted]@", text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"


def check_url(url: str, protocols: list[str]) -> Message | None:
    """Why ``url`` may not be fetched, or None. Credentials belong in their fields, not in the URL."""
    url = url.strip()
    if not url or url.startswith("-") or "::" in url or any(c.isspace() for c in url):
        return Message(msg("This is not a git repository URL."))
    scheme = url.split("://", 1)[0].lower() if "://" in url else ("file" if url.startswith("/") else "ssh")
    if scheme not in protocols:
        return Message(
            msg("The %(scheme)s transport is not allowed here (allowed: %(allowed)s)."),
            {"scheme": scheme, "allowed": ", ".join(protocols)},
        )
    if "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0] and scheme != "ssh":
        return Message(msg("Put the user name and the password or token in their own fields, not in the URL."))
    return None


def check_ref(value: str) -> bool:
    return bool(_SAFE_REF.match(value))


class GitRemote:
    """One repository: its URL, credentials and the time limit of every call."""

    def __init__(self, url: str, *, username: str = "", secret: str = "", timeout: int | None = None):
        self.url, self.username, self.secret = url.strip(), username, secret
        self.timeout = timeout or settings.PORTAL_INSTRUCTIONS_GIT_TIMEOUT
        self.protocols = [p.lower() for p in settings.PORTAL_INSTRUCTIONS_GIT_PROTOCOLS]
        problem = check_url(self.url, self.protocols)
        if problem is not None:
            raise GitError(problem)

    def head(self, branch: str) -> str:
        """The commit the branch points to, without downloading anything."""
        self._check_ref(branch)
        with self._scratch() as scratch:
            out = self._git(["ls-remote", "--heads", self.url, f"refs/heads/{branch}"], scratch, "ls-remote")
        for line in out.decode(errors="replace").splitlines():
            sha, _tab, ref = line.partition("\t")
            if ref == f"refs/heads/{branch}":
                return sha
        raise GitError(Message(msg("The repository has no branch %(branch)s."), {"branch": branch}))

    def read(self, branch: str, path: str, *, max_bytes: int) -> tuple[str, bytes]:
        """The branch's head commit and the bytes of ``path`` in it (at most ``max_bytes``)."""
        self._check_ref(branch)
        path = path.strip().lstrip("/")
        if not path or path.startswith("-"):
            raise GitError(Message(msg("The file path is empty or invalid.")))
        with self._scratch() as scratch:
            repo = str(Path(scratch) / "repo.git")
            self._git(["init", "--quiet", "--bare", repo], scratch, "init")
            refspec = f"+refs/heads/{branch}:refs/portal/head"
            self._git(["-C", repo, "fetch", "--quiet", "--no-tags", "--depth=1", self.url, refspec], scratch, "fetch")
            commit = self._git(["-C", repo, "rev-parse", "--verify", "refs/portal/head^{commit}"], scratch, "rev-parse")
            commit = commit.decode().strip()
            target = f"{commit}:{path}"
            try:
                kind = self._git(["-C", repo, "cat-file", "-t", target], scratch, "cat-file").decode().strip()
            except GitError:
                raise GitError(
                    Message(
                        msg("There is no file %(path)s in %(branch)s at commit %(commit)s."),
                        {"path": path, "branch": branch, "commit": commit[:10]},
                    )
                ) from None
            if kind != "blob":
                raise GitError(Message(msg("%(path)s is not a file (it is a %(kind)s)."), {"path": path, "kind": kind}))
            size = int(self._git(["-C", repo, "cat-file", "-s", target], scratch, "cat-file").decode().strip())
            check_size(size, max_bytes)
            return commit, self._git(["-C", repo, "cat-file", "blob", target], scratch, "cat-file")

    # --- running git ---------------------------------------------------------------------------------------------

    def _check_ref(self, branch: str) -> None:
        if not check_ref(branch):
            raise GitError(Message(msg("%(branch)s is not a valid branch name."), {"branch": branch}))

    def _scratch(self):
        workdir = Path(settings.PORTAL_INSTRUCTIONS_GIT_DIR or tempfile.gettempdir()) / "saas-portal-git"
        workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return tempfile.TemporaryDirectory(dir=workdir, prefix="poll-")

    def _env(self, scratch: str) -> dict[str, str]:
        askpass = Path(scratch) / "askpass.sh"
        if not askpass.exists():
            askpass.write_text(_ASKPASS)
            askpass.chmod(0o700)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", scratch),  # the portal user's SSH keys and known hosts, if any
            "LC_ALL": "C",  # git's messages in English: they are stored and shown as they are
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_ALLOW_PROTOCOL": ":".join(self.protocols),
            "GIT_ASKPASS": str(askpass),
            "SSH_ASKPASS": str(askpass),
            "GIT_SSH_COMMAND": f"ssh -o BatchMode=yes -o ConnectTimeout={self.timeout}",
            "PORTAL_GIT_USERNAME": self.username,
            "PORTAL_GIT_PASSWORD": self.secret,
        }

    def _git(self, args: list[str], scratch: str, action: str) -> bytes:
        command = ["git", "-c", "credential.helper=", "-c", "core.askPass=" + str(Path(scratch) / "askpass.sh"), *args]
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._env(scratch),
                cwd=scratch,
                start_new_session=True,  # its own process group: a timeout stops git and the helpers it started
            )
        except OSError as exc:
            raise GitError(Message(msg("git cannot be run: %(error)s"), {"error": exc.strerror or str(exc)})) from None
        try:
            out, err = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise GitError(
                Message(
                    msg("git %(action)s took more than %(seconds)d seconds and was stopped."),
                    {"action": action, "seconds": self.timeout},
                )
            ) from None
        if process.returncode != 0:
            detail = scrub(err.decode(errors="replace").strip(), [self.secret]) or f"exit status {process.returncode}"
            raise GitError(Message(msg("git %(action)s failed: %(detail)s"), {"action": action, "detail": detail}))
        return out
