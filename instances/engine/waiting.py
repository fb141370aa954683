"""Waiting for the cluster without sleeping: a sequence of bounded watches, each re-checked against a deadline.

A watch call blocks until something changes or ``PORTAL_WATCH_TIMEOUT`` passes, then the state is read again
with one list call. The wait ends when the state is final or when the caller's deadline passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass

from django.conf import settings

from instances.kube.client import ClusterClient
from instances.kube.rollout import JobPhase, job_status, workload_status

WORKLOAD_KINDS = ("Deployment", "StatefulSet")


@dataclass
class WaitOutcome:
    done: bool
    failed: bool = False
    timed_out: bool = False
    message: str = ""


def _wait_for_event(client: ClusterClient, kind: str, namespace: str | None, remaining: float, **selectors) -> None:
    """Block until one event about ``kind`` arrives or a bounded watch times out; the stream is closed either way."""
    timeout = max(1, int(min(remaining, settings.PORTAL_WATCH_TIMEOUT)))
    with closing(client.watch(kind, namespace, timeout_seconds=timeout, **selectors)) as events:
        next(events, None)


def wait_for_workloads(
    client: ClusterClient,
    namespace: str,
    selector: str,
    expected: set[tuple[str, str]],
    *,
    deadline: float,
    on_progress: Callable[[list[dict]], None],
) -> WaitOutcome:
    """Follow the rollout of the ``expected`` (kind, name) workloads until all are done, one fails, or time is up.

    ``on_progress`` receives the current objects after every change (the engine stores snapshots from them).
    """
    while True:
        objects, versions = [], {}
        for kind in WORKLOAD_KINDS:
            items, versions[kind] = client.list(kind, namespace, label_selector=selector)
            objects += [item for item in items if (kind, item["metadata"]["name"]) in expected]
        on_progress(objects)
        seen = {(o["kind"], o["metadata"]["name"]) for o in objects}
        states = {(o["kind"], o["metadata"]["name"]): workload_status(o) for o in objects}
        failed = [f"{kind}/{name}: {state.message}" for (kind, name), state in states.items() if state.failed]
        if failed:
            return WaitOutcome(done=False, failed=True, message="; ".join(failed))
        pending = sorted((expected - seen) | {key for key, state in states.items() if not state.done})
        if not pending:
            return WaitOutcome(done=True, message="all workloads are available")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            detail = "; ".join(
                f"{kind}/{name}: {states[(kind, name)].message if (kind, name) in states else 'missing'}"
                for kind, name in pending
            )
            return WaitOutcome(done=False, timed_out=True, message=f"deadline passed: {detail}")
        kind = pending[0][0]
        _wait_for_event(client, kind, namespace, remaining, label_selector=selector, resource_version=versions[kind])


def wait_for_job(
    client: ClusterClient, namespace: str, name: str, *, deadline: float, on_progress: Callable[[dict], None]
) -> WaitOutcome:
    """Follow one Job until it succeeds or fails, or the deadline passes."""
    while True:
        items, version = client.list("Job", namespace, field_selector=f"metadata.name={name}")
        job = items[0] if items else None
        if job is None:
            return WaitOutcome(done=False, failed=True, message=f"Job {name} disappeared")
        on_progress(job)
        state = job_status(job)
        if state.phase == JobPhase.SUCCEEDED:
            return WaitOutcome(done=True, message=state.message)
        if state.phase == JobPhase.FAILED:
            return WaitOutcome(done=False, failed=True, message=state.message)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return WaitOutcome(done=False, timed_out=True, message=f"Job {name} still running at the deadline")
        _wait_for_event(client, "Job", namespace, remaining, field_selector=f"metadata.name={name}",
                        resource_version=version)  # fmt: skip


def wait_for_namespace_gone(client: ClusterClient, name: str, *, deadline: float) -> WaitOutcome:
    while True:
        items, version = client.list("Namespace", None, field_selector=f"metadata.name={name}")
        if not items:
            return WaitOutcome(done=True, message=f"namespace {name} is gone")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return WaitOutcome(done=False, timed_out=True, message=f"namespace {name} still terminating")
        _wait_for_event(client, "Namespace", None, remaining, field_selector=f"metadata.name={name}",
                        resource_version=version)  # fmt: skip
