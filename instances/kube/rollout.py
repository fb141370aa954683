"""Rollout and Job status as pure functions over Kubernetes objects (the dicts the API returns).

The Deployment and StatefulSet rules follow `kubectl rollout status`, in the same order, so the portal says
"done" exactly when kubectl would. No I/O here: the caller reads the object (a watch event, a list item,
saved JSON in tests) and asks what it means.

Fields the API server omits when zero (`omitempty`) count as 0; a missing `spec.replicas` counts as 1,
the API server's default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

# Reason of the Deployment "Progressing" condition once spec.progressDeadlineSeconds has passed.
PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
# The Job controller's default when spec.backoffLimit is unset.
DEFAULT_BACKOFF_LIMIT = 6


@dataclass(frozen=True)
class WorkloadState:
    """Where a Deployment or StatefulSet rollout stands. `done` and `failed` are never both true;
    neither means "still rolling out, ask again later"."""

    done: bool
    failed: bool
    message: str
    desired: int
    updated: int
    ready: int
    available: int

    @property
    def finished(self) -> bool:
        """No point in waiting any longer: the rollout succeeded or failed."""
        return self.done or self.failed


def _int(mapping: Mapping[str, Any] | None, key: str, default: int = 0) -> int:
    value = (mapping or {}).get(key)
    return default if value is None else int(value)


def _condition(status: Mapping[str, Any], condition_type: str) -> Mapping[str, Any] | None:
    for condition in status.get("conditions") or ():
        if condition.get("type") == condition_type:
            return condition
    return None


def _condition_true(status: Mapping[str, Any], condition_type: str) -> Mapping[str, Any] | None:
    condition = _condition(status, condition_type)
    return condition if condition is not None and condition.get("status") == "True" else None


def deployment_status(obj: Mapping[str, Any]) -> WorkloadState:
    """kubectl's Deployment rollout rules, in order:

    1. the controller has not seen the latest spec yet (generation > observedGeneration): wait;
    2. the Progressing condition says ProgressDeadlineExceeded: failed;
    3. fewer updated replicas than desired: wait;
    4. old replicas still running (replicas > updatedReplicas): wait;
    5. fewer available replicas than updated ones: wait;
    6. otherwise done.

    Step 1 comes first on purpose: after a new apply, a deadline condition left by the previous
    rollout must not fail the new one before the controller has looked at it.
    """
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    name = metadata.get("name", "")
    desired = _int(spec, "replicas", default=1)
    replicas = _int(status, "replicas")
    updated = _int(status, "updatedReplicas")
    ready = _int(status, "readyReplicas")
    available = _int(status, "availableReplicas")

    def state(message: str, *, done: bool = False, failed: bool = False) -> WorkloadState:
        return WorkloadState(done, failed, message, desired, updated, ready, available)

    if _int(metadata, "generation") > _int(status, "observedGeneration"):
        return state(f'Waiting for deployment "{name}" spec update to be observed...')
    progressing = _condition(status, "Progressing")
    if progressing is not None and progressing.get("reason") == PROGRESS_DEADLINE_EXCEEDED:
        detail = progressing.get("message")
        return state(
            f'deployment "{name}" exceeded its progress deadline' + (f": {detail}" if detail else ""), failed=True
        )
    if updated < desired:
        return state(
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{updated} out of {desired} new replicas have been updated..."
        )
    if replicas > updated:
        return state(
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{replicas - updated} old replicas are pending termination..."
        )
    if available < updated:
        return state(
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{available} of {updated} updated replicas are available..."
        )
    return state(f'deployment "{name}" successfully rolled out', done=True)


def statefulset_status(obj: Mapping[str, Any]) -> WorkloadState:
    """kubectl's StatefulSet rollout rules.

    Wait until the controller has observed the latest generation (a status without observedGeneration has
    not been observed at all). For the RollingUpdate strategy, then wait while fewer pods than
    `replicas - partition` are updated, while fewer pods than `replicas` are ready, and — without a
    partition — while currentRevision differs from updateRevision (the controller moves currentRevision
    only once every pod runs the new revision). With a partition the rollout is complete once the pods
    above the partition are updated: the others stay on the old revision by design.

    An OnDelete StatefulSet only replaces pods when they are deleted, so there is no rollout to follow
    (kubectl refuses it): its state is done as soon as the desired number of pods is ready.
    """
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    name = metadata.get("name", "")
    desired = _int(spec, "replicas", default=1)
    updated = _int(status, "updatedReplicas")
    ready = _int(status, "readyReplicas")
    available = _int(status, "availableReplicas")
    strategy = spec.get("updateStrategy") or {}
    rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
    partition = _int(strategy.get("rollingUpdate"), "partition") if rolling else 0

    def state(message: str, *, done: bool = False) -> WorkloadState:
        return WorkloadState(done, False, message, desired, updated, ready, available)

    observed = _int(status, "observedGeneration")
    if observed == 0 or _int(metadata, "generation") > observed:
        return state(f'Waiting for statefulset "{name}" spec update to be observed...')
    if rolling and updated < desired - partition:
        if partition:
            return state(
                f'Waiting for partitioned roll out of statefulset "{name}" to finish: '
                f"{updated} out of {desired - partition} new pods have been updated..."
            )
        return state(
            f'Waiting for statefulset "{name}" rolling update to finish: '
            f"{updated} out of {desired} new pods have been updated..."
        )
    if ready < desired:
        return state(f'Waiting for {desired - ready} pods of statefulset "{name}" to be ready...')
    if not rolling:
        return state(f'statefulset "{name}" uses the OnDelete strategy: {ready} pods ready', done=True)
    if partition:
        return state(f'partitioned roll out of statefulset "{name}" complete: {updated} new pods updated', done=True)
    update_revision = status.get("updateRevision", "")
    current_revision = status.get("currentRevision", "")
    if update_revision != current_revision:
        return state(
            f'Waiting for statefulset "{name}" rolling update to complete '
            f"{updated} pods at revision {update_revision}..."
        )
    return state(
        f'statefulset "{name}" rolling update complete {_int(status, "currentReplicas")} pods '
        f"at revision {current_revision}",
        done=True,
    )


def workload_status(obj: Mapping[str, Any]) -> WorkloadState:
    """Rollout state of a Deployment or a StatefulSet; ValueError for any other kind."""
    kind = obj.get("kind")
    if kind == "Deployment":
        return deployment_status(obj)
    if kind == "StatefulSet":
        return statefulset_status(obj)
    raise ValueError(f"No rollout status for kind {kind!r}; only Deployment and StatefulSet have one.")


# --- Jobs (backups) -----------------------------------------------------------------------------------------


class JobPhase(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class JobState:
    """Where a Job (a backup run) stands, with the times the Job controller recorded."""

    phase: JobPhase
    message: str
    active: int
    succeeded: int
    failed: int
    start_time: datetime | None
    completion_time: datetime | None

    @property
    def done(self) -> bool:
        return self.phase == JobPhase.SUCCEEDED

    @property
    def finished(self) -> bool:
        return self.phase in (JobPhase.SUCCEEDED, JobPhase.FAILED)

    @property
    def duration(self) -> timedelta | None:
        """From start to completion; None while the Job runs or when it failed before recording an end."""
        if self.start_time is None or self.completion_time is None:
            return None
        return self.completion_time - self.start_time


def _timestamp(value: str | None) -> datetime | None:
    # Kubernetes writes RFC 3339 in UTC ("2024-06-12T02:00:00Z"), which fromisoformat reads from 3.11 on.
    return datetime.fromisoformat(value) if value else None


def job_status(obj: Mapping[str, Any]) -> JobState:
    """Succeeded, failed, running or pending, from the Job's conditions and counters.

    Conditions come first: `Complete` (or `SuccessCriteriaMet`, set just before it since Kubernetes 1.31)
    means succeeded; `Failed` (or `FailureTarget`, set while the last pods terminate) means failed, with
    the controller's reason (BackoffLimitExceeded, DeadlineExceeded...). Without conditions — a status
    written by something other than the Job controller — the counters decide: `succeeded >= completions`
    is success, `failed > backoffLimit` is failure, as the controller itself would conclude.
    """
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    name = metadata.get("name", "")
    active = _int(status, "active")
    succeeded = _int(status, "succeeded")
    failed = _int(status, "failed")
    completions = _int(spec, "completions", default=1)
    backoff_limit = _int(spec, "backoffLimit", default=DEFAULT_BACKOFF_LIMIT)
    start_time = _timestamp(status.get("startTime"))
    completion_time = _timestamp(status.get("completionTime"))

    def state(phase: JobPhase, message: str) -> JobState:
        return JobState(phase, message, active, succeeded, failed, start_time, completion_time)

    for condition_type in ("Failed", "FailureTarget"):
        if condition := _condition_true(status, condition_type):
            reason = condition.get("reason") or "Failed"
            detail = condition.get("message")
            return state(JobPhase.FAILED, f'job "{name}" failed ({reason})' + (f": {detail}" if detail else ""))
    for condition_type in ("Complete", "SuccessCriteriaMet"):
        if _condition_true(status, condition_type):
            return state(JobPhase.SUCCEEDED, f'job "{name}" completed')
    if succeeded >= completions:
        return state(JobPhase.SUCCEEDED, f'job "{name}" completed')
    if failed > backoff_limit:
        return state(
            JobPhase.FAILED, f'job "{name}" failed (BackoffLimitExceeded): {failed} failed pods, limit {backoff_limit}'
        )
    if start_time is None and active == 0:
        return state(JobPhase.PENDING, f'Waiting for job "{name}" to start...')
    retries = f", {failed} failed so far (limit {backoff_limit})" if failed else ""
    return state(JobPhase.RUNNING, f'job "{name}" running: {active} active pods{retries}')
