"""A worker that dies at any step of an upgrade: the operation resumes, and afterwards the record (version,
status, drift) agrees with what the cluster runs. Failures after an apply never leave a version the cluster
is not running."""

import datetime

import pytest
from django.utils import timezone

from instances.choices import BackupTrigger, InstanceStatus, OperationStatus, RequestStatus
from instances.engine import backups, dispatcher, steps
from instances.engine.runner import run_operation
from instances.engine.sync import sync_cluster
from instances.models import ApplicationVersion, Backup, Instance, Operation
from tests.engine_fixtures import approved_upgrade, core_image, run_worker, upgrade

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.faults]


class Killed(BaseException):
    """What SIGKILL does to a job: it stops where it is, and nothing of the engine's error handling runs."""


def kill(*args, **kwargs):
    raise Killed


def resume(operation):
    """What happens after the kill: the dispatcher notices the silence, and a worker runs the operation again."""
    operation.refresh_from_db()
    assert operation.status == OperationStatus.RUNNING
    later = timezone.now() + datetime.timedelta(hours=1)
    assert f"resumed [{operation.pk}]" in dispatcher.dispatch(now=later)
    run_worker("operations")
    operation.refresh_from_db()
    return operation


def assert_record_matches_cluster(instance, kube_emulator, cluster, version):
    instance.refresh_from_db()
    assert instance.current_version == version
    assert core_image(kube_emulator, instance.namespace) == f"registry.example.org/smile/core:{version}"
    sync_cluster(cluster)
    instance.refresh_from_db()
    assert not instance.drift, instance.drift_detail
    assert instance.status == InstanceStatus.RUNNING


@pytest.mark.parametrize("step", ["during the backup", "before the apply", "after the apply", "during the rollout"])
def test_an_upgrade_killed_at_any_step_resumes_and_the_record_matches_the_cluster(
    step, deployed, kube_emulator, cluster, admin_unistra, maintainer, versions, monkeypatch
):
    target = {
        "during the backup": (backups, "wait_for_job"),
        "before the apply": (steps, "apply_version"),
        "after the apply": (steps, "follow_rollout"),
        "during the rollout": (steps, "record_snapshots"),
    }[step]
    request, operation = approved_upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    with monkeypatch.context() as patch:
        patch.setattr(*target, kill)
        with pytest.raises(Killed):
            run_operation(operation.pk)

    operation = resume(operation)

    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    request.refresh_from_db()
    assert request.status == RequestStatus.SUCCEEDED and operation.attempts == 2
    assert Backup.objects.filter(instance=deployed, trigger=BackupTrigger.PRE_UPGRADE).count() == 1
    assert_record_matches_cluster(deployed, kube_emulator, cluster, versions["1.2.6"])


def test_a_rollback_killed_half_way_resumes_the_rollback(
    deployed, kube_emulator, cluster, admin_unistra, maintainer, smile, versions, monkeypatch
):
    broken = ApplicationVersion.objects.create(application=smile, version="1.2.7-broken")
    request, operation = approved_upgrade(admin_unistra, maintainer, deployed, broken)
    with monkeypatch.context() as patch:
        patch.setattr(steps, "roll_back", kill)  # the upgrade failed; the worker dies as the rollback begins
        with pytest.raises(Killed):
            run_operation(operation.pk)
    assert Operation.objects.get(pk=operation.pk).progress["rolling_back"] is True

    operation = resume(operation)

    assert operation.status == OperationStatus.FAILED
    request.refresh_from_db()
    assert request.status == RequestStatus.FAILED and request.result.startswith("rolled back to 1.2.4")
    assert Backup.objects.filter(instance=deployed, trigger=BackupTrigger.PRE_UPGRADE).count() == 1
    assert_record_matches_cluster(deployed, kube_emulator, cluster, versions["1.2.4"])


def test_a_failure_after_the_apply_records_the_version_the_cluster_was_given(
    deployed, kube_emulator, admin_unistra, maintainer, versions
):
    # The apply goes through, then the cluster refuses every list of Deployments: the rollout cannot be followed.
    kube_emulator.inject(method="GET", path_regex="/deployments$", status=403, times=None)
    request = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])

    assert request.status == RequestStatus.FAILED and "refused" in request.result
    instance = Instance.objects.get(pk=deployed.pk)
    assert core_image(kube_emulator, instance.namespace) == "registry.example.org/smile/core:1.2.6"
    assert instance.current_version == versions["1.2.6"]  # what the cluster runs, not the version before
    assert instance.status == InstanceStatus.DEGRADED and instance.drift
    assert "ended before its rollout was confirmed" in instance.drift_detail


def test_the_status_sync_flags_images_that_are_not_the_recorded_version(deployed, kube_emulator, cluster, versions):
    # The record says 1.2.5 while the cluster runs 1.2.4's images (and the applied images agree with the cluster).
    # The record is the version and the images pinned for it.
    images = deployed.application.image_refs("1.2.5")
    Instance.objects.filter(pk=deployed.pk).update(current_version=versions["1.2.5"], images=images)
    sync_cluster(cluster)
    instance = Instance.objects.get(pk=deployed.pk)
    assert instance.drift
    assert "registry.example.org/smile/core:1.2.4, not an image of version 1.2.5" in instance.drift_detail
