"""Simulated controllers for the emulated cluster (the sandbox and the tests).

The emulator stores objects but runs no controllers, so nothing would ever roll out. This module plays the
parts the portal depends on, deliberately and visibly:

- Deployments and StatefulSets roll out over ``rollout_seconds``; a container image whose tag ends in
  ``-broken`` never becomes available, and after ``progress_deadline_seconds`` the Deployment reports
  ``ProgressDeadlineExceeded`` (this is how the demo shows an automatic rollback).
- Jobs run for ``job_seconds`` and then succeed, or fail when ``fail_jobs`` is set or the Job carries the
  annotation ``kubesim.io/fail: "true"``.
- CronJobs fire every ``cron_interval`` seconds when it is set (real schedules would take hours to show).

It works on the emulator's store directly, never through HTTP, so it does not show up in request counts.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from datetime import UTC, datetime

logger = logging.getLogger(__name__)
FAIL_ANNOTATION = "kubesim.io/fail"


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _images(obj: dict) -> list[str]:
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    return [c.get("image", "") for c in spec.get("containers", []) + spec.get("initContainers", [])]


def is_broken(image: str) -> bool:
    """A tag ending in ``-broken`` marks an image that never becomes ready (demo of a failed upgrade)."""
    name = image.split("@", 1)[0]
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
    return tag.endswith("-broken")


class SimulatedControllers:
    """A background thread that advances workloads, Jobs and CronJobs in a :class:`KubernetesEmulator`."""

    def __init__(
        self,
        emulator,
        *,
        rollout_seconds: float = 3.0,
        job_seconds: float = 2.0,
        progress_deadline_seconds: float = 10.0,
        cron_interval: float | None = None,
        fail_jobs: bool = False,
        tick: float = 0.1,
    ):
        self.emulator = emulator
        self.rollout_seconds = rollout_seconds
        self.job_seconds = job_seconds
        self.progress_deadline_seconds = progress_deadline_seconds
        self.cron_interval = cron_interval
        self.fail_jobs = fail_jobs
        self.tick = tick
        self._started: dict[tuple, float] = {}
        # Nothing to do while the store has not changed and no rollout or Job is still in progress.
        self._seen_version = -1
        self._pending = True
        self._last_fired: dict[tuple, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SimulatedControllers:
        self._thread = threading.Thread(target=self._run, name="simulated-controllers", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> SimulatedControllers:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.step()
            except Exception:
                # A simulated controller must survive objects deleted under it; the next tick sees the truth.
                logger.debug("simulated controllers: step failed", exc_info=True)

    def step(self, now: float | None = None) -> None:
        """One reconciliation pass over every object."""
        now = time.monotonic() if now is None else now
        if self.cron_interval is not None:
            for obj in self.emulator.list_objects("batch/v1", "CronJob"):
                self._cronjob(obj, now)
        version = self.emulator.store.resource_version
        if version == self._seen_version and not self._pending:
            return
        self._pending = False
        for obj in self.emulator.list_objects("apps/v1", "Deployment"):
            self._deployment(obj, now)
        for obj in self.emulator.list_objects("apps/v1", "StatefulSet"):
            self._statefulset(obj, now)
        for obj in self.emulator.list_objects("batch/v1", "Job"):
            self._job(obj, now)
        # What was read at the start: a write that landed during this pass is seen by the next one.
        self._seen_version = version

    # --- workloads -----------------------------------------------------------------------------------------

    def _progress(self, obj: dict, now: float) -> tuple[float, float]:
        meta = obj["metadata"]
        key = (obj["kind"], meta.get("namespace"), meta["name"], meta.get("uid"), meta.get("generation", 1))
        started = self._started.setdefault(key, now)
        elapsed = now - started
        fraction = 1.0 if self.rollout_seconds <= 0 else min(1.0, elapsed / self.rollout_seconds)
        return fraction, elapsed

    def _set_status(self, obj: dict, status: dict) -> None:
        current = obj.get("status") or {}
        if all(current.get(key) == value for key, value in status.items()):
            return
        meta = obj["metadata"]
        self.emulator.set_status(obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"], status)

    def _deployment(self, obj: dict, now: float) -> None:
        replicas = obj.get("spec", {}).get("replicas", 1)
        generation = obj["metadata"].get("generation", 1)
        fraction, elapsed = self._progress(obj, now)
        broken = any(is_broken(image) for image in _images(obj))
        updated = replicas if broken else math.floor(fraction * replicas)
        available = 0 if broken else updated
        if updated < replicas or (broken and elapsed < self.progress_deadline_seconds):
            self._pending = True
        progressing = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}
        if not broken and updated >= replicas:
            progressing["reason"] = "NewReplicaSetAvailable"
        if broken and elapsed >= self.progress_deadline_seconds:
            progressing = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                           "message": "ReplicaSet has timed out progressing."}  # fmt: skip
        available_condition = {
            "type": "Available",
            "status": "True" if available >= replicas else "False",
            "reason": "MinimumReplicasAvailable" if available >= replicas else "MinimumReplicasUnavailable",
        }
        self._set_status(
            obj,
            {
                "observedGeneration": generation,
                "replicas": replicas,
                "updatedReplicas": updated,
                "readyReplicas": available,
                "availableReplicas": available,
                "unavailableReplicas": max(0, replicas - available),
                "conditions": [available_condition, progressing],
            },
        )

    def _statefulset(self, obj: dict, now: float) -> None:
        replicas = obj.get("spec", {}).get("replicas", 1)
        generation = obj["metadata"].get("generation", 1)
        fraction, _elapsed = self._progress(obj, now)
        broken = any(is_broken(image) for image in _images(obj))
        ready = 0 if broken else math.floor(fraction * replicas)
        revision = f"{obj['metadata']['name']}-{generation}"
        done = ready >= replicas
        if not done and not broken:
            self._pending = True
        self._set_status(
            obj,
            {
                "observedGeneration": generation,
                "replicas": replicas,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "currentReplicas": replicas if done else ready,
                "updatedReplicas": replicas if done or broken else ready,
                "updateRevision": revision,
                "currentRevision": revision if done else f"{obj['metadata']['name']}-{generation - 1}",
            },
        )

    # --- jobs ----------------------------------------------------------------------------------------------

    def _job(self, obj: dict, now: float) -> None:
        status = obj.get("status") or {}
        if status.get("completionTime") or any(c.get("type") == "Failed" for c in status.get("conditions", [])):
            return
        meta = obj["metadata"]
        key = ("Job", meta.get("namespace"), meta["name"], meta.get("uid"))
        started = self._started.setdefault(key, now)
        self._pending = True  # a Job runs until the branch below finishes it
        if not status.get("startTime"):
            self._set_status(obj, {"startTime": _now_iso(), "active": 1})
            if self.job_seconds > 0:
                return
        if now - started < self.job_seconds:
            return
        fail = self.fail_jobs or (meta.get("annotations") or {}).get(FAIL_ANNOTATION) == "true"
        if fail:
            limit = obj.get("spec", {}).get("backoffLimit", 6)
            self._set_status(
                obj,
                {"active": 0, "failed": limit + 1,
                 "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                 "message": "Job has reached the specified backoff limit",
                                 "lastTransitionTime": _now_iso()}]},
            )  # fmt: skip
        else:
            self._set_status(
                obj,
                {"active": 0, "succeeded": 1, "completionTime": _now_iso(),
                 "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": _now_iso()}]},
            )  # fmt: skip

    def _cronjob(self, obj: dict, now: float) -> None:
        meta = obj["metadata"]
        if obj.get("spec", {}).get("suspend"):
            return
        key = ("CronJob", meta.get("namespace"), meta["name"], meta.get("uid"))
        last = self._last_fired.setdefault(key, now)
        if now - last < self.cron_interval:
            return
        self._last_fired[key] = now
        self.fire(obj)

    def fire(self, cronjob: dict) -> dict:
        """Create a Job from a CronJob as its controller would on schedule."""
        meta = cronjob["metadata"]
        template = copy.deepcopy(cronjob["spec"]["jobTemplate"])
        job_meta = template.get("metadata") or {}
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": f"{meta['name']}-{int(time.time() * 1000) % 10**10}",
                "namespace": meta.get("namespace", ""),
                "labels": dict(job_meta.get("labels") or {}),
                "annotations": {**(job_meta.get("annotations") or {}),
                                "batch.kubernetes.io/cronjob-scheduled-timestamp": _now_iso()},
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": meta["name"],
                                     "uid": meta.get("uid", ""), "controller": True}],
            },
            "spec": template.get("spec", {}),
        }  # fmt: skip
        created = self.emulator.seed(job)
        self.emulator.set_status("batch/v1", "CronJob", meta.get("namespace", ""), meta["name"],
                                 {"lastScheduleTime": _now_iso()})  # fmt: skip
        return created
