"""Run a Job's real command on the host: how the sandbox's backup and restore Jobs really dump and restore.

`HostJobRunner` is a ``job_runner`` for :class:`~kubesim.controllers.SimulatedControllers`. Given a Job, it runs
the first container's command and args as a subprocess, the way the kubelet would run it in a pod, as far as a
host allows:

- the environment is the container's: ``value``, ``valueFrom.fieldRef`` (the pod's name, namespace and labels,
  among them ``batch.kubernetes.io/job-name``) and ``valueFrom.secretKeyRef``; nothing of the host's environment
  leaks in but ``PATH``;
- volumes are directories of a scratch directory: a Secret volume holds one file per key (decoded, mode
  ``defaultMode``; an absent optional Secret gives an empty directory, an absent required one fails the Job as a
  pod stuck in ContainerCreating would), an emptyDir is empty;
- mounts cannot exist at their paths on the host, so every environment value that starts with a mount path is
  rewritten to the host directory: a script reaches its mounts only through environment variables;
- ``overrides`` (constructor ``env``) then replace variables, e.g. ``PGHOST=127.0.0.1`` instead of the cluster's
  Service name, with ``{namespace}`` substituted (``PGDATABASE=sandbox_{namespace}``);
- the Job's ``activeDeadlineSeconds`` (capped) is the time limit; on expiry the whole process group is killed.

The pieces (`resolve_env`, `materialise_volumes`, `prepare`, `run`) are plain functions, so tests can run a
rendered Job's command without an emulator. Standard library only (plus the emulator, given by the caller).
"""

from __future__ import annotations

import base64
import os
import re
import secrets as _random
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

# A Job without a deadline, or with a long one, still ends: the sandbox must not keep a stray process for hours.
DEFAULT_TIMEOUT_CAP = 600.0
# How much of the output a Job's message keeps (the condition message is shown to people).
MESSAGE_LINES = 5
MESSAGE_CHARS = 1000
_LABEL_FIELD = re.compile(r"^metadata\.labels\['([^']+)'\]$")

__all__ = ["HostJobRunner", "JobSetupError", "materialise_volumes", "pod_metadata", "prepare", "resolve_env", "run"]


class JobSetupError(Exception):
    """The Job cannot start: a Secret or key it needs is missing, or its spec asks for what the host cannot do."""


def pod_spec(job: Mapping) -> Mapping:
    return ((job.get("spec") or {}).get("template") or {}).get("spec") or {}


def pod_metadata(job: Mapping) -> dict:
    """The metadata of the pod the Job controller would create: the template's labels plus the Job's own."""
    meta = job.get("metadata") or {}
    template_meta = ((job.get("spec") or {}).get("template") or {}).get("metadata") or {}
    name = meta.get("name", "job")
    labels = {**(template_meta.get("labels") or {}), "batch.kubernetes.io/job-name": name, "job-name": name}
    if meta.get("uid"):
        labels["batch.kubernetes.io/controller-uid"] = meta["uid"]
    return {"name": f"{name}-{_random.token_hex(3)[:5]}", "namespace": meta.get("namespace", ""), "labels": labels}


def _secret_data(secret: Mapping) -> dict[str, bytes]:
    """A Secret's keys decoded: ``data`` is base64, ``stringData`` (as a seed may hold it) plain text."""
    data = {key: base64.b64decode(value or "") for key, value in (secret.get("data") or {}).items()}
    data.update({key: str(value).encode() for key, value in (secret.get("stringData") or {}).items()})
    return data


def _field(path: str, pod: Mapping) -> str:
    if path == "metadata.name":
        return pod["name"]
    if path == "metadata.namespace":
        return pod["namespace"]
    if match := _LABEL_FIELD.match(path):
        return pod["labels"].get(match.group(1), "")
    raise JobSetupError(f"fieldRef {path!r} is not supported on the host")


def resolve_env(container: Mapping, pod: Mapping, secrets: Mapping[str, Mapping | None]) -> dict[str, str]:
    """The container's environment as the kubelet would give it; ``secrets`` maps a name to a Secret (or None)."""
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        name, source = item["name"], item.get("valueFrom")
        if source is None:
            # $(VAR) references to earlier variables, as the kubelet expands them ($$ escapes).
            value = re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                           lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
                           str(item.get("value", "")))  # fmt: skip
            env[name] = value
        elif "fieldRef" in source:
            env[name] = _field(source["fieldRef"]["fieldPath"], pod)
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            secret = secrets.get(ref["name"])
            data = _secret_data(secret) if secret is not None else None
            if data is None or ref["key"] not in data:
                if ref.get("optional"):
                    continue
                raise JobSetupError(f"env {name}: key {ref['key']!r} of Secret {ref['name']!r} not found")
            env[name] = data[ref["key"]].decode()
        else:
            raise JobSetupError(f"env {name}: only value, fieldRef and secretKeyRef are supported on the host")
    return env


def materialise_volumes(
    pod: Mapping, container: Mapping, secrets: Mapping[str, Mapping | None], workdir: Path
) -> dict[str, str]:
    """Create the container's volumes under ``workdir``; returns mount path -> host directory."""
    volumes = {volume["name"]: volume for volume in pod.get("volumes") or []}
    mounts: dict[str, str] = {}
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        if volume is None:
            raise JobSetupError(f"volume {mount['name']!r} is mounted but not declared")
        directory = workdir / "volumes" / mount["name"]
        if not directory.exists():
            directory.mkdir(parents=True)
            if "secret" in volume:
                _write_secret(volume["secret"], secrets, directory)
            elif "emptyDir" not in volume:
                raise JobSetupError(f"volume {mount['name']!r}: only secret and emptyDir volumes are supported")
        mounts[mount["mountPath"].rstrip("/") or "/"] = str(directory)
    return mounts


def _write_secret(source: Mapping, secrets: Mapping[str, Mapping | None], directory: Path) -> None:
    secret = secrets.get(source["secretName"])
    if secret is None:
        if source.get("optional"):
            return  # an absent optional Secret mounts as an empty directory
        raise JobSetupError(f"Secret {source['secretName']!r} not found: the pod would never start")
    data = _secret_data(secret)
    items = source.get("items")
    paths = {item["key"]: item["path"] for item in items} if items else {key: key for key in data}
    for key, relative in paths.items():
        if key not in data:
            if source.get("optional"):
                continue
            raise JobSetupError(f"key {key!r} of Secret {source['secretName']!r} not found")
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[key])
        # Owner read at least: on the host the files belong to us, not to the pod's fsGroup.
        path.chmod((source.get("defaultMode") or 0o644) | 0o400)


def _rewrite(value: str, mounts: Mapping[str, str]) -> str:
    for mount_path in sorted(mounts, key=len, reverse=True):
        if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
            return mounts[mount_path] + value[len(mount_path) :]
    return value


def prepare(
    job: Mapping,
    secrets: Mapping[str, Mapping | None],
    overrides: Mapping[str, str] | None = None,
    *,
    path: list[str] | tuple[str, ...] = (),
    workdir: str | Path | None = None,
) -> tuple[list[str], dict[str, str], Path]:
    """(argv, environment, scratch directory) to run the Job's first container on the host.

    The caller removes the scratch directory (``run`` does). ``path`` is prepended to the host's PATH (tools not
    installed system-wide, e.g. the aws CLI of a virtualenv)."""
    spec = pod_spec(job)
    containers = spec.get("containers") or []
    if not containers:
        raise JobSetupError("the Job has no container")
    container = containers[0]
    argv = [*(container.get("command") or []), *(container.get("args") or [])]
    if not argv:
        raise JobSetupError("the container has no command: the image's entrypoint is unknown on the host")
    pod = pod_metadata(job)
    directory = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="kubesim-job-"))
    try:
        mounts = materialise_volumes(spec, container, secrets, directory)
        env = {"PATH": os.pathsep.join([*path, os.environ.get("PATH", "/usr/bin:/bin")])}
        env.update({name: _rewrite(value, mounts) for name, value in resolve_env(container, pod, secrets).items()})
        for name, value in (overrides or {}).items():
            env[name] = value.replace("{namespace}", pod["namespace"])
    except BaseException:
        if not workdir:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    return argv, env, directory


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines[-MESSAGE_LINES:])[-MESSAGE_CHARS:]


def run(argv: list[str], env: Mapping[str, str], cwd: str | Path, timeout: float) -> tuple[int | None, str, str]:
    """Run ``argv`` in a session of its own; (exit code or None on timeout, stdout, stderr). On timeout the whole
    process group is killed, so a pipeline's children do not outlive the Job."""
    process = subprocess.Popen(
        argv, env=dict(env), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        text=True, errors="replace", start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        return None, stdout, stderr
    return process.returncode, stdout, stderr


class HostJobRunner:
    """A ``job_runner`` that runs each Job's real command on the host (see the module docstring)."""

    def __init__(
        self,
        emulator,
        *,
        env: Mapping[str, str] | None = None,
        path: list[str] | tuple[str, ...] = (),
        timeout_cap: float = DEFAULT_TIMEOUT_CAP,
    ):
        self.emulator = emulator
        self.overrides = dict(env or {})
        self.path = tuple(path)
        self.timeout_cap = timeout_cap

    def secrets_of(self, job: Mapping) -> dict[str, dict | None]:
        """The Secrets the Job's pod refers to, read from the emulator's store (None when absent)."""
        namespace = (job.get("metadata") or {}).get("namespace", "")
        spec = pod_spec(job)
        names = {v["secret"]["secretName"] for v in spec.get("volumes") or [] if "secret" in v}
        for container in spec.get("containers") or []:
            for item in container.get("env") or []:
                if ref := (item.get("valueFrom") or {}).get("secretKeyRef"):
                    names.add(ref["name"])
        return {name: self.emulator.get_object("v1", "Secret", namespace, name) for name in names}

    def __call__(self, job: Mapping) -> tuple[bool, str]:
        try:
            argv, env, workdir = prepare(job, self.secrets_of(job), self.overrides, path=self.path)
        except JobSetupError as error:
            return False, str(error)
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds") or self.timeout_cap
        timeout = min(float(deadline), self.timeout_cap)
        try:
            code, stdout, stderr = run(argv, env, workdir, timeout)
        except OSError as error:  # the command does not exist on the host
            return False, f"the command could not start: {error}"
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        if code is None:
            return False, f"DeadlineExceeded: killed after {timeout:g}s. {_tail(stderr)}".strip()
        if code == 0:
            return True, _tail(stdout)
        return False, f"exit code {code}: {_tail(stderr) or _tail(stdout)}"
