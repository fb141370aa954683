"""Simulated controllers for the emulated cluster (the sandbox and the tests).

The emulator stores objects but runs no controllers, so nothing would ever roll out. This module plays the
parts the portal depends on, deliberately and visibly:

- Deployments and StatefulSets roll out over ``rollout_seconds``; a container image whose tag ends in
  ``-broken`` never becomes available, and after ``progress_deadline_seconds`` the Deployment reports
  ``ProgressDeadlineExceeded`` (this is how the demo shows an automatic rollback).
- Jobs run for ``job_seconds`` and then succeed, or fail when ``fail_jobs`` is set or the Job carries the
  annotation ``kubesim.io/fail: "true"``. With a ``job_runner`` (a callable given the Job, answering
  ``(succeeded, message)``), a Job runs that instead, in a thread of its own, and ends when it returns: the
  sandbox runs the Jobs' real commands on the host this way (``jobrunner``).
- CronJobs fire every ``cron_interval`` seconds when it is set (real schedules would take hours to show).

It works on the emulator's store directly, never through HTTP: it is not in the request log, though its writes
count in `write_count` and reach watches like any other write.
"""

from __future__ import annotations

import copy
import heapq
import logging
import math
import threading
import time

from . import fields
from .errors import ApiError

logger = logging.getLogger(__name__)
# What the simulated controllers act on.
WATCHED = (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("batch/v1", "Job"), ("batch/v1", "CronJob"))
FAIL_ANNOTATION = "kubesim.io/fail"


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
        job_runner=None,
        tick: float = 0.1,
    ):
        self.emulator = emulator
        self.rollout_seconds = rollout_seconds
        self.job_seconds = job_seconds
        self.progress_deadline_seconds = progress_deadline_seconds
        self.cron_interval = cron_interval
        self.fail_jobs = fail_jobs
        self.job_runner = job_runner
        # Job key -> (succeeded, message) once its runner returned; absent while it runs.
        self._job_results: dict[tuple, tuple[bool, str]] = {}
        self.tick = tick
        self._started: dict[tuple, float] = {}
        self._started_runs: set[tuple] = set()
        # Each pass looks only at what changed since the last one, plus what is still in progress: the cost of a
        # pass follows the activity, not the size of the cluster.
        self._seen_version = -1
        self._pending: set[tuple[str, str, str, str]] = set()
        self._cron_heap: list[tuple[float, tuple[str, str, str, str]]] = []
        self._cron_known: set[tuple[str, str, str, str]] = set()
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
            except ApiError:
                # A simulated controller must survive objects deleted under it; the next tick sees the truth.
                logger.debug("simulated controllers: step failed", exc_info=True)
            except Exception:
                logger.exception("simulated controllers: step failed")  # a bug of the emulator: say so loudly

    def step(self, now: float | None = None) -> None:
        """One reconciliation pass over the objects that changed or are still in progress."""
        now = time.monotonic() if now is None else now
        version = self.emulator.store.resource_version
        work = self._pending | self._changed_since(self._seen_version)
        self._pending = set()
        for key in sorted(work):
            obj = self.emulator.get_object(*key)
            if obj is None:
                continue
            if key[1] == "CronJob":
                self._schedule_cronjob(key, now)
            elif getattr(self, f"_{key[1].lower()}")(obj, now):
                self._pending.add(key)
        if self.cron_interval is not None:
            self._fire_due_cronjobs(now)
        # What was read at the start: a write that landed during this pass is seen by the next one.
        self._seen_version = version

    def _changed_since(self, version: int) -> set[tuple[str, str, str, str]]:
        """(apiVersion, kind, namespace, name) of the objects written after ``version`` (all of them at first)."""
        store = self.emulator.store
        changed = set()
        for api_version, kind in WATCHED:
            if version >= 0:
                try:
                    events, _ = store.events_after(self.emulator.type_of(api_version, kind).key, version)
                except ApiError:  # the history rolled over: look at everything once
                    return self._changed_since(-1)
                objects = [event.object for event in events if event.type != "DELETED"]
            else:
                objects = self.emulator.list_objects(api_version, kind)
            for obj in objects:
                meta = obj["metadata"]
                changed.add((api_version, kind, meta.get("namespace", ""), meta["name"]))
        return changed

    # --- cron ----------------------------------------------------------------------------------------------

    def _schedule_cronjob(self, key: tuple[str, str, str, str], now: float) -> None:
        if self.cron_interval is not None and key not in self._cron_known:
            self._cron_known.add(key)
            heapq.heappush(self._cron_heap, (now + self.cron_interval, key))

    def _fire_due_cronjobs(self, now: float) -> None:
        while self._cron_heap and self._cron_heap[0][0] <= now:
            _when, key = heapq.heappop(self._cron_heap)
            obj = self.emulator.get_object(*key)
            if obj is None:
                self._cron_known.discard(key)
                continue
            heapq.heappush(self._cron_heap, (now + self.cron_interval, key))
            if not obj.get("spec", {}).get("suspend"):
                self.fire(obj)

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

    def _deployment(self, obj: dict, now: float) -> bool:
        replicas = obj.get("spec", {}).get("replicas", 1)
        generation = obj["metadata"].get("generation", 1)
        fraction, elapsed = self._progress(obj, now)
        broken = any(is_broken(image) for image in _images(obj))
        updated = replicas if broken else math.floor(fraction * replicas)
        available = 0 if broken else updated
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
        return updated < replicas or (broken and elapsed < self.progress_deadline_seconds)

    def _statefulset(self, obj: dict, now: float) -> bool:
        replicas = obj.get("spec", {}).get("replicas", 1)
        generation = obj["metadata"].get("generation", 1)
        fraction, _elapsed = self._progress(obj, now)
        broken = any(is_broken(image) for image in _images(obj))
        ready = 0 if broken else math.floor(fraction * replicas)
        revision = f"{obj['metadata']['name']}-{generation}"
        done = ready >= replicas
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
        return not done and not broken

    # --- jobs ----------------------------------------------------------------------------------------------

    def _job(self, obj: dict, now: float) -> bool:
        status = obj.get("status") or {}
        if status.get("completionTime") or any(c.get("type") == "Failed" for c in status.get("conditions", [])):
            return False
        meta = obj["metadata"]
        key = ("Job", meta.get("namespace"), meta["name"], meta.get("uid"))
        started = self._started.setdefault(key, now)
        if not status.get("startTime"):
            self._set_status(obj, {"startTime": fields.now(), "active": 1})
            if self.job_seconds > 0:
                return True
        fail = self.fail_jobs or (meta.get("annotations") or {}).get(FAIL_ANNOTATION) == "true"
        message = "Job has reached the specified backoff limit"
        if self.job_runner is not None and not fail:
            if key not in self._started_runs:
                self._started_runs.add(key)
                threading.Thread(target=self._run_job, args=(key, copy.deepcopy(obj)), daemon=True).start()
            result = self._job_results.pop(key, None)
            if result is None:
                return True
            self._started_runs.discard(key)
            fail, message = not result[0], result[1] or message
        elif now - started < self.job_seconds:
            return True
        if fail:
            limit = obj.get("spec", {}).get("backoffLimit", 6)
            self._set_status(
                obj,
                {"active": 0, "failed": limit + 1,
                 "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                 "message": message, "lastTransitionTime": fields.now()}]},
            )  # fmt: skip
        else:
            self._set_status(
                obj,
                {"active": 0, "succeeded": 1, "completionTime": fields.now(),
                 "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": fields.now()}]},
            )  # fmt: skip
        return False

    def _run_job(self, key: tuple, job: dict) -> None:
        try:
            result = self.job_runner(job)
        except Exception as error:  # the runner's own failure fails the Job, as a crashed pod would
            logger.exception("simulated controllers: job runner failed")
            result = (False, f"the job runner failed: {error}")
        self._job_results[key] = result

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
                                "batch.kubernetes.io/cronjob-scheduled-timestamp": fields.now()},
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": meta["name"],
                                     "uid": meta.get("uid", ""), "controller": True}],
            },
            "spec": template.get("spec", {}),
        }  # fmt: skip
        created = self.emulator.seed(job)
        self.emulator.set_status("batch/v1", "CronJob", meta.get("namespace", ""), meta["name"],
                                 {"lastScheduleTime": fields.now()})  # fmt: skip
        return created
