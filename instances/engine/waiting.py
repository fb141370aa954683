"""Waiting for the cluster without sleeping: one list, then one watch that streams every change.

The state is read once with a list call; a watch from the list's resourceVersion then delivers each change as
it happens, and the wait ends as soon as the state is final. A watch lasts at most ``PORTAL_WATCH_TIMEOUT``
(the server ends it); the next one resumes from the last version seen, and the whole wait from the caller's
deadline. Only when the server has forgotten that version (410 Gone) is the state listed again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass

from django.conf import settings

from core.messages import Message, msg
from instances.kube.client import ClusterClient
from instances.kube.errors import WatchExpired
from instances.kube.kinds import WORKLOAD_KINDS
from instances.kube.rollout import JobPhase, job_status, workload_status


@dataclass
class WaitOutcome:
    done: bool
    message: Message


# Given the objects seen so far (name -> object), the outcome when the wait is over, or None to go on waiting.
Judge = Callable[[dict[str, dict]], WaitOutcome | None]


def follow(
    client: ClusterClient,
    kind: str,
    namespace: str | None,
    judge: Judge,
    *,
    deadline: float,
    on_timeout: Callable[[dict[str, dict]], WaitOutcome],
    label_selector: str | None = None,
    field_selector: str | None = None,
    heartbeat: Callable[[], None] | None = None,
) -> WaitOutcome:
    """Watch the objects of ``kind`` matching the selectors until ``judge`` gives an outcome or time is up.

    ``heartbeat`` is called before every watch, so a quiet wait still proves the worker alive."""
    selectors = {"label_selector": label_selector, "field_selector": field_selector}
    items, version = client.list(kind, namespace, **selectors)
    seen = {item["metadata"]["name"]: item for item in items}
    while (outcome := judge(seen)) is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return on_timeout(seen)
        if heartbeat is not None:
            heartbeat()
        timeout = max(1, int(min(remaining, settings.PORTAL_WATCH_TIMEOUT)))
        watch = client.watch(kind, namespace, resource_version=version, timeout_seconds=timeout, **selectors)
        try:
            with closing(watch) as events:
                for event in events:
                    obj = event["object"]
                    version = obj["metadata"].get("resourceVersion") or version
                    if event["type"] == "DELETED":
                        seen.pop(obj["metadata"]["name"], None)
                    else:
                        seen[obj["metadata"]["name"]] = obj
                    if (outcome := judge(seen)) is not None:
                        return outcome
        except WatchExpired:
            # The server no longer remembers our version: read the state afresh and watch from there.
            items, version = client.list(kind, namespace, **selectors)
            seen = {item["metadata"]["name"]: item for item in items}
    return outcome


def wait_for_workloads(
    client: ClusterClient,
    namespace: str,
    selector: str,
    expected: set[tuple[str, str]],
    *,
    deadline: float,
    on_progress: Callable[[list[dict]], None],
    heartbeat: Callable[[], None] | None = None,
) -> WaitOutcome:
    """Follow the rollout of the ``expected`` (kind, name) workloads until all are done, one fails, or time is up.

    ``on_progress`` receives the objects of a kind after every change (the engine stores snapshots from them).
    """
    for kind in WORKLOAD_KINDS:
        names = {name for expected_kind, name in expected if expected_kind == kind}
        if not names:
            continue
        outcome = follow(
            client,
            kind,
            namespace,
            _rollout_judge(kind, names, on_progress),
            deadline=deadline,
            on_timeout=lambda seen, kind=kind, names=names: _rollout_timeout(kind, names, seen),
            label_selector=selector,
            heartbeat=heartbeat,
        )
        if not outcome.done:
            return outcome
    return WaitOutcome(done=True, message=Message(msg("all workloads are available")))


def _rollout_judge(kind: str, names: set[str], on_progress: Callable[[list[dict]], None]) -> Judge:
    def judge(seen: dict[str, dict]) -> WaitOutcome | None:
        objects = [seen[name] for name in sorted(names) if name in seen]
        on_progress(objects)
        states = {obj["metadata"]["name"]: workload_status(obj) for obj in objects}
        failed = [f"{kind}/{name}: {state.message}" for name, state in states.items() if state.failed]
        if failed:
            return WaitOutcome(done=False, message=Message.plain("; ".join(failed)))
        if names <= states.keys() and all(state.done for state in states.values()):
            return WaitOutcome(done=True, message=Message(msg("all workloads are available")))
        return None

    return judge


def _rollout_timeout(kind: str, names: set[str], seen: dict[str, dict]) -> WaitOutcome:
    pending = []
    for name in sorted(names):
        state = workload_status(seen[name]) if name in seen else None
        if state is None:
            pending.append(f"{kind}/{name}: missing")
        elif not state.done:
            pending.append(f"{kind}/{name}: {state.message}")
    return WaitOutcome(
        done=False,
        message=Message(msg("deadline passed: %(pending)s"), {"pending": "; ".join(pending)}),
    )


def wait_for_job(
    client: ClusterClient,
    namespace: str,
    name: str,
    *,
    deadline: float,
    on_progress: Callable[[dict], None],
    heartbeat: Callable[[], None] | None = None,
) -> WaitOutcome:
    """Follow one Job until it succeeds or fails, or the deadline passes."""

    def judge(seen: dict[str, dict]) -> WaitOutcome | None:
        job = seen.get(name)
        if job is None:
            return WaitOutcome(done=False, message=Message(msg("Job %(name)s disappeared"), {"name": name}))
        on_progress(job)
        state = job_status(job)
        if state.phase == JobPhase.SUCCEEDED:
            return WaitOutcome(done=True, message=Message.plain(state.message))
        if state.phase == JobPhase.FAILED:
            return WaitOutcome(done=False, message=Message.plain(state.message))
        return None

    def timeout(_seen) -> WaitOutcome:
        text = msg("Job %(name)s still running at the deadline")
        return WaitOutcome(done=False, message=Message(text, {"name": name}))

    return follow(
        client, "Job", namespace, judge, deadline=deadline, on_timeout=timeout, field_selector=f"metadata.name={name}",
        heartbeat=heartbeat,
    )  # fmt: skip


def wait_for_namespace_gone(
    client: ClusterClient, name: str, *, deadline: float, heartbeat: Callable[[], None] | None = None
) -> WaitOutcome:
    def judge(seen: dict[str, dict]) -> WaitOutcome | None:
        if name in seen:
            return None
        return WaitOutcome(done=True, message=Message(msg("namespace %(name)s is gone"), {"name": name}))

    def timeout(_seen) -> WaitOutcome:
        text = msg("namespace %(name)s is still terminating")
        return WaitOutcome(done=False, message=Message(text, {"name": name}))

    return follow(
        client, "Namespace", None, judge, deadline=deadline, on_timeout=timeout,
        field_selector=f"metadata.name={name}", heartbeat=heartbeat,
    )  # fmt: skip
