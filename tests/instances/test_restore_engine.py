"""Restores and restore drills against the emulated cluster: the steps in the log, the application scaled down
and back, a failed restore Job rolled back to the pre-restore dump, a failed pre-restore backup changing nothing,
drills passing and failing, and the fleet page showing the last drill."""

import pytest
from django.urls import reverse

from instances import workflow
from instances.choices import BackupStatus, BackupTrigger, InstanceStatus, OperationKind, OperationStatus, RequestStatus
from instances.engine import dispatcher
from instances.engine.drills import queue_drills, restore_drills
from instances.models import Backup, Operation
from tests.engine_fixtures import ctx, run_worker

RESTORE_CRONJOB = "smile-restore"


def restore_jobs(emulator, namespace) -> list[dict]:
    return [
        job
        for job in emulator.list_objects("batch/v1", "Job", namespace)
        if any(o.get("name") == RESTORE_CRONJOB for o in job["metadata"].get("ownerReferences") or [])
    ]


def env_of(job: dict) -> dict[str, str]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item.get("value") for item in container.get("env") or []}


def ensure_restore_cronjob(instance) -> None:
    """The base brings the restore CronJob with every deploy: the restores below use that one."""
    with instance.cluster.client() as client:
        assert client.get("CronJob", instance.namespace, RESTORE_CRONJOB) is not None


class FailRestores:
    """Wraps the job runner: the first ``count`` restore Jobs fail (a bad dump), the others run as usual."""

    def __init__(self, runner, count=1):
        self.runner, self.count, self.failed = runner, count, []

    def __call__(self, job):
        if "RESTORE_KEY" in env_of(job) and len(self.failed) < self.count:
            self.failed.append(job["metadata"]["name"])
            return False, "pg_restore: error: input file does not appear to be a valid archive"
        return self.runner(job)


@pytest.fixture
def live(deployed, maintainer):
    """smile-new deployed, with a verified scheduled-like backup (a manual one taken through the engine)."""
    ensure_restore_cronjob(deployed)
    request = workflow.request_backup(ctx(maintainer), deployed)
    dispatcher.dispatch()
    run_worker()
    request.refresh_from_db()
    assert request.status == RequestStatus.SUCCEEDED, request.result
    backup = Backup.objects.get(instance=deployed, trigger=BackupTrigger.MANUAL)
    assert backup.status == BackupStatus.VERIFIED, backup.message
    deployed.refresh_from_db()
    return deployed


def run_restore(admin, maintainer, instance, backup):
    request = workflow.request_restore(ctx(admin), instance, backup=backup)
    workflow.approve(ctx(maintainer), request)
    dispatcher.dispatch()
    run_worker()
    request.refresh_from_db()
    instance.refresh_from_db()
    return request, Operation.objects.get(request=request)


def replicas(emulator, namespace):
    return {
        d["metadata"]["name"]: d["spec"].get("replicas")
        for d in emulator.list_objects("apps/v1", "Deployment", namespace)
    }


def log_text(operation):
    return "\n".join(line["message"] for line in operation.log)


@pytest.mark.django_db(transaction=True)
def test_restore_takes_a_backup_stops_the_application_restores_and_starts_it_again(
    live, admin_unistra, maintainer, kube_emulator
):
    chosen = Backup.objects.get(instance=live, status=BackupStatus.VERIFIED)
    before = replicas(kube_emulator, live.namespace)
    assert before and all(count >= 1 for count in before.values())
    request, operation = run_restore(admin_unistra, maintainer, live, chosen)
    assert request.status == RequestStatus.SUCCEEDED, request.result
    assert operation.kind == OperationKind.RESTORE and operation.backup == chosen
    text = log_text(operation)
    for step in ("(Before restore)", "verified in the storage", "scaling down", "the application is stopped",
                 "restore Job", "succeeded", "scale them back up", "rollout"):  # fmt: skip
        assert step in text, step
    assert text.index("scaling down") < text.index("restore Job") < text.index("scale them back up")
    pre = Backup.objects.get(instance=live, trigger=BackupTrigger.PRE_RESTORE)
    assert pre.status == BackupStatus.VERIFIED
    (job,) = restore_jobs(kube_emulator, live.namespace)
    assert env_of(job)["RESTORE_KEY"] == chosen.storage_key and env_of(job)["RESTORE_MODE"] == "replace"
    assert env_of(job)["PGHOST"] == "smile-database"  # the template's own variables are kept
    assert replicas(kube_emulator, live.namespace) == before
    assert live.status == InstanceStatus.RUNNING
    assert "restored from the backup of" in str(request.result_display)


@pytest.mark.django_db(transaction=True)
def test_a_failed_restore_puts_the_pre_restore_dump_back(live, admin_unistra, maintainer, kube_emulator, controllers):
    controllers.job_runner = FailRestores(controllers.job_runner)
    chosen = Backup.objects.get(instance=live, status=BackupStatus.VERIFIED)
    before = replicas(kube_emulator, live.namespace)
    request, operation = run_restore(admin_unistra, maintainer, live, chosen)
    assert request.status == RequestStatus.FAILED
    assert operation.status == OperationStatus.FAILED
    assert "the instance was put back as it was" in operation.error
    assert "not appear to be a valid archive" in operation.error
    pre = Backup.objects.get(instance=live, trigger=BackupTrigger.PRE_RESTORE)
    jobs = {job["metadata"]["name"]: env_of(job)["RESTORE_KEY"] for job in restore_jobs(kube_emulator, live.namespace)}
    assert sorted(jobs.values()) == sorted([chosen.storage_key, pre.storage_key])
    assert "putting the pre-restore backup" in log_text(operation)
    assert replicas(kube_emulator, live.namespace) == before
    assert live.status == InstanceStatus.RUNNING


@pytest.mark.django_db(transaction=True)
def test_when_putting_the_dump_back_fails_too_the_operation_says_so(
    live, admin_unistra, maintainer, kube_emulator, controllers
):
    controllers.job_runner = FailRestores(controllers.job_runner, count=2)
    chosen = Backup.objects.get(instance=live, status=BackupStatus.VERIFIED)
    request, operation = run_restore(admin_unistra, maintainer, live, chosen)
    assert request.status == RequestStatus.FAILED
    assert "failed too" in operation.error and "needs a maintainer" in operation.error
    assert live.status == InstanceStatus.FAILED
    assert all(count >= 1 for count in replicas(kube_emulator, live.namespace).values())


@pytest.mark.django_db(transaction=True)
def test_a_failed_pre_restore_backup_aborts_with_nothing_changed(
    live, admin_unistra, maintainer, kube_emulator, controllers
):
    chosen = Backup.objects.get(instance=live, status=BackupStatus.VERIFIED)
    controllers.job_runner.upload = False  # the Job "succeeds" but leaves no dump: verification fails it
    before = replicas(kube_emulator, live.namespace)
    generations = {d["metadata"]["name"]: d["metadata"]["generation"]
                   for d in kube_emulator.list_objects("apps/v1", "Deployment", live.namespace)}  # fmt: skip
    request, operation = run_restore(admin_unistra, maintainer, live, chosen)
    assert request.status == RequestStatus.FAILED
    assert "pre-restore backup failed" in operation.error and "nothing changed" in operation.error
    assert restore_jobs(kube_emulator, live.namespace) == []
    assert replicas(kube_emulator, live.namespace) == before
    assert generations == {d["metadata"]["name"]: d["metadata"]["generation"]
                           for d in kube_emulator.list_objects("apps/v1", "Deployment", live.namespace)}  # fmt: skip
    assert live.status == InstanceStatus.RUNNING


@pytest.mark.django_db(transaction=True)
def test_drills_pass_and_fail_and_the_fleet_shows_the_last_one(live, kube_emulator, controllers, client, maintainer):
    chosen = Backup.objects.filter(instance=live, status=BackupStatus.VERIFIED).latest("finished_at")
    assert "queued 1 restore drills" in restore_drills()
    run_worker()
    drill = Operation.objects.get(kind=OperationKind.DRILL)
    assert drill.status == OperationStatus.SUCCEEDED, drill.error
    assert drill.backup == chosen
    # The scheduler runs the periodic job again at each start: an instance drilled within the interval waits.
    assert "queued 0 restore drills" in restore_drills()
    (job,) = restore_jobs(kube_emulator, live.namespace)
    assert env_of(job)["RESTORE_MODE"] == "drill"
    assert all(count >= 1 for count in replicas(kube_emulator, live.namespace).values())  # the instance untouched

    client.force_login(maintainer)
    fleet = client.get(reverse("instances:instance_list")).content.decode()
    assert "passed" in fleet and reverse("instances:operation_detail", args=[drill.pk]) in fleet

    controllers.job_runner = FailRestores(controllers.job_runner)
    response = client.post(reverse("instances:drills"))
    assert response.status_code == 302
    run_worker()
    failed = Operation.objects.filter(kind=OperationKind.DRILL).latest("id")
    assert failed.status == OperationStatus.FAILED
    assert "restore drill failed" in failed.error
    fleet = client.get(reverse("instances:instance_list")).content.decode()
    assert reverse("instances:operation_detail", args=[failed.pk]) in fleet and ">failed<" in fleet


@pytest.mark.django_db(transaction=True)
def test_drills_skip_instances_without_a_verified_backup_and_only_maintainers_start_them(
    deployed, client, admin_unistra
):
    ensure_restore_cronjob(deployed)
    Backup.objects.filter(instance=deployed).update(status=BackupStatus.FAILED)
    assert queue_drills() == []
    client.force_login(admin_unistra)
    assert client.post(reverse("instances:drills")).status_code == 403
    assert client.post(reverse("instances:instance_drill", args=[deployed.slug])).status_code == 403
    assert not Operation.objects.filter(kind=OperationKind.DRILL).exists()


@pytest.mark.django_db(transaction=True)
def test_a_restore_interrupted_after_its_backup_resumes_without_taking_it_again(
    live, admin_unistra, maintainer, kube_emulator, monkeypatch
):
    from instances.engine import restore as restores
    from instances.kube.errors import TransientClusterError

    real, calls = restores.scale_down, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise TransientClusterError("scale: connection reset")
        return real(*args, **kwargs)

    monkeypatch.setattr(restores, "scale_down", flaky)
    chosen = Backup.objects.get(instance=live, status=BackupStatus.VERIFIED)
    request, operation = run_restore(admin_unistra, maintainer, live, chosen)
    assert request.status == RequestStatus.SUCCEEDED, request.result
    assert operation.attempts == 2
    assert Backup.objects.filter(instance=live, trigger=BackupTrigger.PRE_RESTORE).count() == 1
    assert len(restore_jobs(kube_emulator, live.namespace)) == 1


@pytest.mark.django_db(transaction=True)
def test_a_maintainer_drills_one_instance_from_its_page(live, client, maintainer, kube_emulator):
    client.force_login(maintainer)
    page = client.get(live.get_absolute_url()).content.decode()
    assert reverse("instances:instance_drill", args=[live.slug]) in page
    response = client.post(reverse("instances:instance_drill", args=[live.slug]))
    assert response.status_code == 302 and response.url == live.get_absolute_url()
    run_worker()
    drill = Operation.objects.get(kind=OperationKind.DRILL, instance=live)
    assert drill.status == OperationStatus.SUCCEEDED
    detail = client.get(drill.get_absolute_url()).content.decode()
    assert "Backup restored" in detail and "restore drill passed" in detail
