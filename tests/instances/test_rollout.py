"""kubectl's rollout rules, ported as pure functions, checked on saved object JSON (tests/instances/data/rollout/)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from instances.kube.rollout import (
    JobPhase,
    JobState,
    WorkloadState,
    deployment_status,
    job_status,
    statefulset_status,
    workload_status,
)

DATA = Path(__file__).parent / "data" / "rollout"


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        (
            "deployment_progressing.json",
            WorkloadState(
                done=False,
                failed=False,
                message='Waiting for deployment "smile-core" rollout to finish: '
                "1 out of 2 new replicas have been updated...",
                desired=2,
                updated=1,
                ready=3,
                available=3,
            ),
        ),
        (
            "deployment_old_replicas_pending.json",
            WorkloadState(
                done=False,
                failed=False,
                message='Waiting for deployment "smile-core" rollout to finish: '
                "1 old replicas are pending termination...",
                desired=2,
                updated=2,
                ready=2,
                available=2,
            ),
        ),
        (
            "deployment_waiting_availability.json",
            WorkloadState(
                done=False,
                failed=False,
                message='Waiting for deployment "smile-core" rollout to finish: '
                "1 of 2 updated replicas are available...",
                desired=2,
                updated=2,
                ready=1,
                available=1,
            ),
        ),
        (
            "deployment_deadline_exceeded.json",
            WorkloadState(
                done=False,
                failed=True,
                message='deployment "smile-core" exceeded its progress deadline: '
                'ReplicaSet "smile-core-7c9d8b6f5d" has timed out progressing.',
                desired=2,
                updated=1,
                ready=2,
                available=2,
            ),
        ),
        (
            # Counters all say "done", but generation 4 has not been observed: kubectl keeps waiting.
            "deployment_generation_lag.json",
            WorkloadState(
                done=False,
                failed=False,
                message='Waiting for deployment "smile-core" spec update to be observed...',
                desired=2,
                updated=2,
                ready=2,
                available=2,
            ),
        ),
        (
            # A deadline left by the previous rollout does not fail a newer spec the controller has not seen.
            "deployment_new_generation_after_deadline.json",
            WorkloadState(
                done=False,
                failed=False,
                message='Waiting for deployment "smile-core" spec update to be observed...',
                desired=2,
                updated=1,
                ready=2,
                available=2,
            ),
        ),
        (
            "deployment_complete.json",
            WorkloadState(
                done=True,
                failed=False,
                message='deployment "smile-core" successfully rolled out',
                desired=2,
                updated=2,
                ready=2,
                available=2,
            ),
        ),
    ],
)
def test_deployment_status(filename, expected):
    assert deployment_status(load(filename)) == expected


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        (
            "statefulset_not_observed.json",
            WorkloadState(
                done=False,
                failed=False,
                message='Waiting for statefulset "smile-database" spec update to be observed...',
                desired=1,
                updated=0,
                ready=0,
                available=0,
            ),
        ),
        (
            "statefulset_generation_lag.json",
            WorkloadState(
                done=False,
                failed=False,
                message='Waiting for statefulset "smile-database" spec update to be observed...',
                desired=1,
                updated=1,
                ready=1,
                available=1,
            ),
        ),
        (
            "statefulset_rolling.json",
            WorkloadState(
                done=False,
                failed=False,
                message='Waiting for statefulset "smile-database" rolling update to finish: '
                "1 out of 3 new pods have been updated...",
                desired=3,
                updated=1,
                ready=3,
                available=3,
            ),
        ),
        (
            "statefulset_not_ready.json",
            WorkloadState(
                done=False,
                failed=False,
                message='Waiting for 1 pods of statefulset "smile-database" to be ready...',
                desired=1,
                updated=1,
                ready=0,
                available=0,
            ),
        ),
        (
            # Updated and ready, but currentRevision has not caught up with updateRevision yet.
            "statefulset_revision_pending.json",
            WorkloadState(
                done=False,
                failed=False,
                message='Waiting for statefulset "smile-database" rolling update to complete '
                "1 pods at revision smile-database-7f8c9d6b5e...",
                desired=1,
                updated=1,
                ready=1,
                available=1,
            ),
        ),
        (
            "statefulset_complete.json",
            WorkloadState(
                done=True,
                failed=False,
                message='statefulset "smile-database" rolling update complete 1 pods at revision '
                "smile-database-7f8c9d6b5e",
                desired=1,
                updated=1,
                ready=1,
                available=1,
            ),
        ),
        (
            "statefulset_partition_waiting.json",
            WorkloadState(
                done=False,
                failed=False,
                message='Waiting for partitioned roll out of statefulset "smile-database" to finish: '
                "0 out of 1 new pods have been updated...",
                desired=3,
                updated=0,
                ready=3,
                available=3,
            ),
        ),
        (
            # Pods below the partition stay on the old revision by design: revisions differ, yet done.
            "statefulset_partition_complete.json",
            WorkloadState(
                done=True,
                failed=False,
                message='partitioned roll out of statefulset "smile-database" complete: 1 new pods updated',
                desired=3,
                updated=1,
                ready=3,
                available=3,
            ),
        ),
        (
            "statefulset_ondelete_ready.json",
            WorkloadState(
                done=True,
                failed=False,
                message='statefulset "smile-database" uses the OnDelete strategy: 1 pods ready',
                desired=1,
                updated=0,
                ready=1,
                available=1,
            ),
        ),
    ],
)
def test_statefulset_status(filename, expected):
    assert statefulset_status(load(filename)) == expected


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        (
            "job_pending.json",
            JobState(
                phase=JobPhase.PENDING,
                message='Waiting for job "smile-timemachine-28634400" to start...',
                active=0,
                succeeded=0,
                failed=0,
                start_time=None,
                completion_time=None,
            ),
        ),
        (
            "job_running.json",
            JobState(
                phase=JobPhase.RUNNING,
                message='job "smile-timemachine-28634400" running: 1 active pods',
                active=1,
                succeeded=0,
                failed=0,
                start_time=utc(2024, 6, 12, 0, 0, 1),
                completion_time=None,
            ),
        ),
        (
            # One failed pod, backoffLimit 2: the controller retries, the Job is not failed.
            "job_retrying.json",
            JobState(
                phase=JobPhase.RUNNING,
                message='job "smile-timemachine-28634400" running: 1 active pods, 1 failed so far (limit 2)',
                active=1,
                succeeded=0,
                failed=1,
                start_time=utc(2024, 6, 12, 0, 0, 1),
                completion_time=None,
            ),
        ),
        (
            "job_succeeded.json",
            JobState(
                phase=JobPhase.SUCCEEDED,
                message='job "smile-timemachine-28634400" completed',
                active=0,
                succeeded=1,
                failed=0,
                start_time=utc(2024, 6, 12, 0, 0, 1),
                completion_time=utc(2024, 6, 12, 0, 3, 41),
            ),
        ),
        (
            "job_failed_backoff.json",
            JobState(
                phase=JobPhase.FAILED,
                message='job "smile-timemachine-28634400" failed (BackoffLimitExceeded): '
                "Job has reached the specified backoff limit",
                active=0,
                succeeded=0,
                failed=3,
                start_time=utc(2024, 6, 12, 0, 0, 1),
                completion_time=None,
            ),
        ),
        (
            "job_failed_deadline.json",
            JobState(
                phase=JobPhase.FAILED,
                message='job "backup-unistra-20240612" failed (DeadlineExceeded): '
                "Job was active longer than specified deadline",
                active=0,
                succeeded=0,
                failed=1,
                start_time=utc(2024, 6, 12, 9, 0, 0),
                completion_time=None,
            ),
        ),
        (
            # No conditions: failed (3) > backoffLimit (2) is what the controller would conclude.
            "job_failed_counts_only.json",
            JobState(
                phase=JobPhase.FAILED,
                message='job "backup-unistra-20240613" failed (BackoffLimitExceeded): 3 failed pods, limit 2',
                active=0,
                succeeded=0,
                failed=3,
                start_time=utc(2024, 6, 13, 9, 0, 0),
                completion_time=None,
            ),
        ),
        (
            "job_succeeded_counts_only.json",
            JobState(
                phase=JobPhase.SUCCEEDED,
                message='job "backup-unistra-20240614" completed',
                active=0,
                succeeded=1,
                failed=0,
                start_time=utc(2024, 6, 14, 9, 0, 0),
                completion_time=utc(2024, 6, 14, 9, 2, 30),
            ),
        ),
    ],
)
def test_job_status(filename, expected):
    assert job_status(load(filename)) == expected


def test_job_state_properties():
    succeeded = job_status(load("job_succeeded.json"))
    assert (succeeded.done, succeeded.finished, succeeded.duration) == (True, True, timedelta(minutes=3, seconds=40))
    failed = job_status(load("job_failed_backoff.json"))
    assert (failed.done, failed.finished, failed.duration) == (False, True, None)
    running = job_status(load("job_running.json"))
    assert (running.done, running.finished, running.duration) == (False, False, None)


def test_job_backoff_limit_defaults_to_six():
    job = load("job_failed_counts_only.json")
    del job["spec"]["backoffLimit"]
    job["status"]["failed"] = 6
    assert job_status(job).phase == JobPhase.RUNNING
    job["status"]["failed"] = 7
    assert job_status(job).phase == JobPhase.FAILED


def test_failure_target_counts_as_failed_before_the_failed_condition():
    job = load("job_failed_backoff.json")
    job["status"]["conditions"] = [c for c in job["status"]["conditions"] if c["type"] == "FailureTarget"]
    assert job_status(job).phase == JobPhase.FAILED


def test_missing_replicas_means_the_api_default_of_one():
    deployment = load("deployment_complete.json")
    del deployment["spec"]["replicas"]
    deployment["status"].update(replicas=1, updatedReplicas=1, readyReplicas=1, availableReplicas=1)
    state = deployment_status(deployment)
    assert (state.done, state.desired) == (True, 1)


def test_statefulset_ready_check_uses_spec_replicas_after_updates():
    # Fully updated on the new revision, but a scale-up from 1 to 2 is not ready yet.
    statefulset = load("statefulset_complete.json")
    statefulset["spec"]["replicas"] = 2
    statefulset["status"]["updatedReplicas"] = 2
    state = statefulset_status(statefulset)
    assert (state.done, state.message) == (False, 'Waiting for 1 pods of statefulset "smile-database" to be ready...')


def test_finished_is_done_or_failed():
    assert deployment_status(load("deployment_complete.json")).finished is True
    assert deployment_status(load("deployment_deadline_exceeded.json")).finished is True
    assert deployment_status(load("deployment_progressing.json")).finished is False


def test_workload_status_dispatches_on_kind():
    assert (
        workload_status(load("deployment_complete.json")).message == 'deployment "smile-core" successfully rolled out'
    )
    assert workload_status(load("statefulset_rolling.json")).updated == 1
    with pytest.raises(ValueError, match="No rollout status for kind 'Job'"):
        workload_status(load("job_running.json"))
