"""The deployment engine end to end: request → dispatcher → RQ worker → Kustomize → emulated cluster → rollout."""

import datetime
import os
import signal
import subprocess
import sys

import pytest
from django.core import mail
from django.db import IntegrityError, connection
from django.utils import timezone

from core.jobs import get_queue
from instances import workflow
from instances.choices import (
    BackupStatus,
    BackupTrigger,
    InstanceStatus,
    OperationKind,
    OperationStatus,
    RequestStatus,
)
from instances.engine import dispatcher
from instances.engine.health import check_cluster
from instances.engine.runner import new_job_id
from instances.engine.sync import sync_cluster, sync_cluster_backups
from instances.kube.client import ClusterClient
from instances.models import ApplicationVersion, Backup, Instance, Operation, RolloutSnapshot
from tests.conftest import ctx
from tests.engine_fixtures import approved_upgrade, core_image, run_worker, upgrade
from tests.processes import ROOT, free_port, wait_for_http, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_request_deploys_the_instance(deployed, kube_emulator, versions):
    instance = Instance.objects.get(pk=deployed.pk)
    assert instance.status == InstanceStatus.RUNNING
    assert instance.current_version == versions["1.2.4"]
    assert core_image(kube_emulator, "saas-smile-new") == "registry.example.org/smile/core:1.2.4"
    namespace = kube_emulator.get_object("v1", "Namespace", "", "saas-smile-new")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    operation = Operation.objects.get(instance=instance)
    assert operation.status == OperationStatus.SUCCEEDED
    assert len(operation.manifests_sha256) == 64
    assert "kind: Deployment" in operation.manifests
    # The generated database password exists in the cluster but never in the portal.
    secret = kube_emulator.get_object("v1", "Secret", "saas-smile-new", "smile-database")
    assert secret is not None
    password = secret.get("data", {}).get("password") or secret.get("stringData", {}).get("password")
    assert password
    assert password not in operation.manifests + str(operation.log)
    assert any("Succeeded" in message.subject for message in mail.outbox)


def test_a_reapply_never_rotates_the_database_password(deployed, kube_emulator, versions):
    before = kube_emulator.get_object("v1", "Secret", "saas-smile-new", "smile-database")
    Instance.objects.filter(pk=deployed.pk).update(drift=True)
    operation = Operation.objects.create(kind=OperationKind.DEPLOY, instance=deployed, target_version=versions["1.2.4"])
    Operation.objects.filter(pk=operation.pk).update(rq_job_id=new_job_id(operation.pk))
    get_queue("operations").enqueue("instances.engine.runner.run_operation", operation.pk)
    run_worker("operations")
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    after = kube_emulator.get_object("v1", "Secret", "saas-smile-new", "smile-database")
    assert after["data"] == before["data"]


def test_an_upgrade_creates_a_password_the_instance_did_not_have_yet(
    deployed, kube_emulator, admin_unistra, maintainer, versions
):
    """An instance deployed by an older portal has no superuser password; an upgrade (not a full apply) must create
    it before the database pod that mounts it starts, and leave the application's password as it was."""
    # As an older portal left it: manifests that mount no superuser password, and no such Secret.
    last = Operation.objects.get(instance=deployed)
    older = last.manifests.replace("secretName: smile-database-superuser", "secretName: smile-database")
    Operation.objects.filter(pk=last.pk).update(manifests=older)
    with ClusterClient.for_url(kube_emulator.url) as client:
        assert client.delete("Secret", "saas-smile-new", "smile-database-superuser")
    before = kube_emulator.get_object("v1", "Secret", "saas-smile-new", "smile-database")
    request = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    assert request.status == RequestStatus.SUCCEEDED, request.result
    operation = request.operations.get()
    assert not any("applied all" in line["message"] for line in operation.log)  # only what changed was sent
    assert kube_emulator.get_object("v1", "Secret", "saas-smile-new", "smile-database-superuser") is not None
    assert kube_emulator.get_object("v1", "Secret", "saas-smile-new", "smile-database")["data"] == before["data"]


def test_unchanged_manifests_are_not_applied_again(deployed, kube_emulator, versions):
    kube_emulator.reset_log()
    operation = Operation.objects.create(kind=OperationKind.DEPLOY, instance=deployed, target_version=versions["1.2.4"])
    get_queue("operations").enqueue("instances.engine.runner.run_operation", operation.pk)
    run_worker("operations")
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    assert any("nothing to send" in line["message"] for line in operation.log)
    assert kube_emulator.write_count == 0
    assert not kube_emulator.requests_matching(method="PATCH")


def test_upgrade_backs_up_first_then_rolls_out(deployed, kube_emulator, admin_unistra, maintainer, versions):
    request = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    assert request.status == RequestStatus.SUCCEEDED, request.result
    instance = Instance.objects.get(pk=deployed.pk)
    assert instance.current_version == versions["1.2.6"]
    assert core_image(kube_emulator, "saas-smile-new") == "registry.example.org/smile/core:1.2.6"
    backup = Backup.objects.get(instance=instance, trigger=BackupTrigger.PRE_UPGRADE)
    assert backup.status == BackupStatus.VERIFIED  # its dump was read back from the storage
    assert backup.storage_key == f"instances/smile-new/{backup.job_name}.dump" and backup.size > 0
    job = kube_emulator.get_object("batch/v1", "Job", "saas-smile-new", backup.job_name)
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    operation = request.operations.get()
    assert "registry.example.org/smile/core:1.2.6" in operation.diff
    assert "-        image: registry.example.org/smile/core:1.2.4" in operation.diff.splitlines()


def test_failed_upgrade_rolls_back(deployed, kube_emulator, admin_unistra, maintainer, smile, versions):
    broken = ApplicationVersion.objects.create(application=smile, version="1.2.7-broken")
    request = upgrade(admin_unistra, maintainer, deployed, broken)
    assert request.status == RequestStatus.FAILED
    assert "rolled back to 1.2.4" in request.result
    instance = Instance.objects.get(pk=deployed.pk)
    assert instance.current_version == versions["1.2.4"]
    assert instance.status == InstanceStatus.RUNNING
    assert core_image(kube_emulator, "saas-smile-new") == "registry.example.org/smile/core:1.2.4"


def test_failed_upgrade_without_rollback_leaves_the_instance_failed(
    deployed, kube_emulator, admin_unistra, maintainer, smile, settings
):
    settings.PORTAL_ROLLBACK_ON_FAILURE = False
    broken = ApplicationVersion.objects.create(application=smile, version="1.2.7-broken")
    request = upgrade(admin_unistra, maintainer, deployed, broken)
    assert request.status == RequestStatus.FAILED
    assert "exceeded its progress deadline" in request.result
    assert Instance.objects.get(pk=deployed.pk).status == InstanceStatus.FAILED


def test_rollout_deadline_fails_the_upgrade(
    deployed, kube_emulator, admin_unistra, maintainer, versions, controllers, settings
):
    settings.PORTAL_ROLLOUT_DEADLINE = 2
    settings.PORTAL_ROLLBACK_ON_FAILURE = False
    controllers.rollout_seconds = 3600  # the new version never finishes rolling out
    request = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    assert request.status == RequestStatus.FAILED
    assert "deadline passed" in request.result


def test_pre_upgrade_backup_failure_aborts(deployed, kube_emulator, admin_unistra, maintainer, versions, controllers):
    controllers.fail_jobs = True
    kube_emulator.reset_log()
    request = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    assert request.status == RequestStatus.FAILED
    assert "pre-upgrade backup failed" in request.result
    assert core_image(kube_emulator, "saas-smile-new") == "registry.example.org/smile/core:1.2.4"
    assert Instance.objects.get(pk=deployed.pk).current_version == versions["1.2.4"]
    assert not kube_emulator.requests_matching(method="PATCH", path_regex="deployments")


def test_on_demand_backup(deployed, admin_unistra):
    request = workflow.request_backup(ctx(admin_unistra), deployed)
    dispatcher.dispatch()
    run_worker()
    request.refresh_from_db()
    assert request.status == RequestStatus.SUCCEEDED, request.result
    assert Backup.objects.get(instance=deployed, trigger=BackupTrigger.MANUAL).status == BackupStatus.VERIFIED


def test_deletion_backs_up_and_removes_the_namespace(deployed, kube_emulator, admin_unistra, maintainer):
    request = workflow.request_delete(ctx(admin_unistra), deployed)
    request.approve(ctx(maintainer))
    dispatcher.dispatch()
    run_worker()
    request.refresh_from_db()
    assert request.status == RequestStatus.SUCCEEDED, request.result
    instance = Instance.objects.get(pk=deployed.pk)
    assert instance.status == InstanceStatus.DELETED
    assert Backup.objects.get(instance=instance, trigger=BackupTrigger.FINAL).status == BackupStatus.VERIFIED
    assert kube_emulator.get_object("v1", "Namespace", "", "saas-smile-new") is None
    assert kube_emulator.list_objects("apps/v1", "Deployment", "saas-smile-new") == []
    assert instance.change_requests.count() == 2  # history kept


def test_future_requests_wait_for_their_time(deployed, admin_unistra, maintainer, versions):
    when = timezone.now() + datetime.timedelta(hours=2)
    request = workflow.request_update(ctx(admin_unistra), deployed, version=versions["1.2.6"], scheduled_for=when)
    request.approve(ctx(maintainer))
    dispatcher.dispatch()
    run_worker()
    request.refresh_from_db()
    assert request.status == RequestStatus.SCHEDULED
    dispatcher.dispatch(now=when + datetime.timedelta(seconds=1))
    run_worker()
    request.refresh_from_db()
    assert request.status == RequestStatus.SUCCEEDED, request.result


def test_redis_flushed_work_still_runs(deployed, admin_unistra, maintainer, versions):
    request = workflow.request_update(ctx(admin_unistra), deployed, version=versions["1.2.6"])
    request.approve(ctx(maintainer))
    dispatcher.dispatch()
    get_queue("default").connection.flushdb()  # Redis lost everything
    later = timezone.now() + datetime.timedelta(minutes=5)
    report = dispatcher.dispatch(now=later)
    assert "requeued [" in report and "requeued []" not in report
    run_worker()
    request.refresh_from_db()
    assert request.status == RequestStatus.SUCCEEDED, request.result


def test_a_dead_worker_s_operation_resumes(deployed, admin_unistra, maintainer, versions):
    request = workflow.request_update(ctx(admin_unistra), deployed, version=versions["1.2.6"])
    request.approve(ctx(maintainer))
    dispatcher.dispatch()
    operation = Operation.objects.get(request=request)
    # What a SIGKILLed worker leaves behind: the operation claimed and running, then silence.
    stale = timezone.now() - datetime.timedelta(hours=1)
    Operation.objects.filter(pk=operation.pk).update(status=OperationStatus.RUNNING, started_at=stale,
                                                      heartbeat_at=stale, attempts=1)  # fmt: skip
    assert f"resumed [{operation.pk}]" in dispatcher.dispatch()
    operation.refresh_from_db()
    assert operation.status == OperationStatus.QUEUED
    assert "the operation resumes" in operation.log[-1]["message"]
    run_worker()
    request.refresh_from_db()
    assert request.status == RequestStatus.SUCCEEDED, request.result
    assert Instance.objects.get(pk=deployed.pk).current_version == versions["1.2.6"]


def test_a_worker_that_keeps_dying_ends_the_operation(deployed, admin_unistra, maintainer, versions, settings):
    request, operation = approved_upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    stale = timezone.now() - datetime.timedelta(hours=1)
    Operation.objects.filter(pk=operation.pk).update(status=OperationStatus.RUNNING, started_at=stale,
                                                      heartbeat_at=stale,
                                                      attempts=settings.PORTAL_OPERATION_MAX_ATTEMPTS)  # fmt: skip
    assert f"recovered [{operation.pk}]" in dispatcher.dispatch()
    operation.refresh_from_db()
    request.refresh_from_db()
    assert operation.status == OperationStatus.FAILED and request.status == RequestStatus.FAILED
    assert "worker stopped responding" in operation.error and "4 times" in operation.error
    # The instance is free again: a new upgrade can be requested and runs.
    again = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    assert again.status == RequestStatus.SUCCEEDED, again.result


def test_a_worker_killed_with_sigkill_mid_operation_resumes(
    deployed, controllers, kube_emulator, admin_unistra, maintainer, versions, settings
):
    controllers.rollout_seconds = 3600  # the rollout never ends: the worker is busy following it when killed
    request = workflow.request_update(ctx(admin_unistra), deployed, version=versions["1.2.6"])
    request.approve(ctx(maintainer))
    dispatcher.dispatch()
    operation = Operation.objects.get(request=request)
    database = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        # The worker verifies the pre-upgrade backup in this test's bucket.
        "PORTAL_BACKUP_S3_ENDPOINT": settings.PORTAL_BACKUP_S3_ENDPOINT,
        "PORTAL_BACKUP_S3_BUCKET": settings.PORTAL_BACKUP_S3_BUCKET,
        "PORTAL_BACKUP_S3_REGION": settings.PORTAL_BACKUP_S3_REGION,
    }
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "--burst", "operations"],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def following_the_rollout():
        operation.refresh_from_db()
        following = any("rollout:" in line["message"] for line in operation.log)
        return operation.status == OperationStatus.RUNNING and following

    try:
        wait_until(following_the_rollout, 60, "the worker to follow the rollout")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its work horse, without any chance to clean up
        worker.wait(timeout=10)
    operation.refresh_from_db()
    assert operation.status == OperationStatus.RUNNING  # nothing ended it...
    later = timezone.now() + datetime.timedelta(seconds=settings.PORTAL_OPERATION_STALE_AFTER + 1)
    dispatcher.dispatch(now=later)  # ...until the dispatcher noticed the silence and resumed it
    operation.refresh_from_db()
    assert operation.status == OperationStatus.QUEUED
    controllers.rollout_seconds = 0
    run_worker("operations")
    operation.refresh_from_db()
    request.refresh_from_db()
    assert request.status == RequestStatus.SUCCEEDED, request.result
    assert operation.attempts == 2
    # The backup taken before the kill is not taken twice; version and images agree with the cluster.
    assert Backup.objects.filter(instance=deployed, trigger=BackupTrigger.PRE_UPGRADE).count() == 1
    assert Instance.objects.get(pk=deployed.pk).current_version == versions["1.2.6"]
    assert core_image(kube_emulator, "saas-smile-new") == "registry.example.org/smile/core:1.2.6"


def test_the_database_allows_one_active_operation_per_instance(deployed, versions):
    Operation.objects.create(kind=OperationKind.BACKUP, instance=deployed)
    with pytest.raises(IntegrityError):
        Operation.objects.create(kind=OperationKind.BACKUP, instance=deployed)


@pytest.mark.parametrize("status", [500, 409, 429])
def test_transient_errors_are_retried(deployed, kube_emulator, admin_unistra, maintainer, versions, status):
    kube_emulator.inject(method="PATCH", path_regex="deployments/smile-core$", status=status, times=2)
    request = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    assert request.status == RequestStatus.SUCCEEDED, request.result
    operation = request.operations.get()
    assert operation.attempts == 3
    assert sum("retrying" in line["message"] for line in operation.log) == 2


def test_persistent_errors_fail_with_a_clear_message(
    deployed, kube_emulator, admin_unistra, maintainer, versions, settings
):
    settings.PORTAL_OPERATION_MAX_ATTEMPTS = 3
    kube_emulator.inject(method="PATCH", path_regex="deployments/smile-core$", status=500, times=None)
    request = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    assert request.status == RequestStatus.FAILED
    assert "gave up after 3 attempts" in request.result
    assert "500" in request.result


def test_timeouts_are_retried(deployed, kube_emulator, admin_unistra, maintainer, versions, settings):
    settings.PORTAL_KUBE_READ_TIMEOUT = 1
    kube_emulator.inject_delay(3, method="PATCH", path_regex="deployments/smile-core$", times=1)
    request = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    assert request.status == RequestStatus.SUCCEEDED, request.result
    assert request.operations.get().attempts == 2


def test_status_sync_uses_constant_api_calls(deployed, cluster, kube_emulator, unistra, smile, versions):
    def list_calls_for_sync():
        kube_emulator.reset_log()
        sync_cluster(cluster)
        sync_cluster_backups(cluster)
        kinds = {"deployments", "statefulsets", "jobs", "namespaces"}
        return sorted(
            r.path
            for r in kube_emulator.requests
            if r.method == "GET" and "/namespaces/" not in r.path and r.path.rsplit("/", 1)[-1] in kinds
        )

    one = list_calls_for_sync()
    # 49 more instances: copies of the deployed one's namespace and workloads, as the apply would leave them.
    source = [kube_emulator.get_object("v1", "Namespace", "", "saas-smile-new")]
    source += kube_emulator.list_objects("apps/v1", "Deployment", "saas-smile-new")
    source += kube_emulator.list_objects("apps/v1", "StatefulSet", "saas-smile-new")
    for i in range(49):
        slug = f"smile-{i}"
        Instance.objects.create(
            organisation=unistra,
            application=smile,
            slug=slug,
            hostname=f"{slug}.test",
            cluster=cluster,
            current_version=versions["1.2.4"],
            status=InstanceStatus.RUNNING,
        )
        for obj in source:
            meta = {**obj["metadata"], "labels": {**obj["metadata"]["labels"], "saas-portal.io/instance": slug}}
            for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"):
                meta.pop(key, None)
            if obj["kind"] == "Namespace":
                meta["name"] = f"saas-{slug}"
            else:
                meta["namespace"] = f"saas-{slug}"
            kube_emulator.seed({**obj, "metadata": meta})  # fmt: skip
    fifty = list_calls_for_sync()
    assert one == fifty
    assert len(fifty) == 4  # one list per kind for the whole cluster
    assert Instance.objects.filter(synced_at__isnull=False).count() == 50
    assert RolloutSnapshot.objects.filter(instance__slug="smile-48").count() == 4


def test_sync_flags_drift_and_records_scheduled_backups(deployed, kube_emulator, kube_api_client, controllers, cluster):
    import kubernetes

    # Somebody changes the running image behind the portal's back (kubectl set image).
    deployment = kube_emulator.get_object("apps/v1", "Deployment", "saas-smile-new", "smile-core")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    patch = {"spec": {"template": {"spec": {"containers": [{**container, "image": "registry.example.org/x:hotfix"}]}}}}
    kubernetes.client.AppsV1Api(kube_api_client).patch_namespaced_deployment("smile-core", "saas-smile-new", patch)
    # The timemachine CronJob fires on its schedule and its Job completes.
    job = controllers.fire(kube_emulator.get_object("batch/v1", "CronJob", "saas-smile-new", "smile-timemachine"))

    def completed():
        controllers.step()
        found = kube_emulator.get_object("batch/v1", "Job", "saas-smile-new", job["metadata"]["name"])
        return bool((found.get("status") or {}).get("completionTime"))

    wait_until(completed, 10, "the scheduled Job to complete")
    sync_cluster(cluster)
    sync_cluster_backups(cluster)
    instance = Instance.objects.get(pk=deployed.pk)
    assert instance.drift
    assert "registry.example.org/x:hotfix" in instance.drift_detail
    backups = Backup.objects.filter(instance=deployed, trigger=BackupTrigger.SCHEDULE)
    assert backups.count() == 1
    assert backups.get().status == BackupStatus.SUCCEEDED  # uploaded; its verification is queued
    run_worker("storage")
    assert backups.get().status == BackupStatus.VERIFIED
    sync_cluster_backups(cluster)  # the Job, still "succeeded" on the cluster, does not move it back
    assert backups.get().status == BackupStatus.VERIFIED
    # A deploy with drift re-applies even though the manifests did not change, and the drift is gone.
    operation = Operation.objects.create(kind=OperationKind.DEPLOY, instance=instance,
                                         target_version=instance.current_version)  # fmt: skip
    get_queue("operations").enqueue("instances.engine.runner.run_operation", operation.pk)
    run_worker("operations")
    assert core_image(kube_emulator, "saas-smile-new") == "registry.example.org/smile/core:1.2.4"
    sync_cluster(cluster)
    assert not Instance.objects.get(pk=deployed.pk).drift


def test_the_sandbox_adopts_and_redeploys_instances(kube_emulator, controllers, queues, unistra, smile, versions):
    from instances.sandbox import ensure_sandbox_cluster, restore_sandbox

    instance = Instance.objects.create(organisation=unistra, application=smile, slug="demo", hostname="demo.test",
                                       current_version=versions["1.2.5"], status=InstanceStatus.RUNNING)  # fmt: skip
    cluster = ensure_sandbox_cluster(kube_emulator.kubeconfig())
    assert Instance.objects.get(pk=instance.pk).cluster == cluster
    check_cluster(cluster)  # the periodic check learns its version, which tells an emulated cluster
    cluster.refresh_from_db()
    assert cluster.is_emulated
    assert restore_sandbox(cluster)
    run_worker("operations")
    assert core_image(kube_emulator, "saas-demo") == "registry.example.org/smile/core:1.2.5"
    assert Instance.objects.get(pk=instance.pk).status == InstanceStatus.RUNNING


def test_python_m_kubesim_serves_an_emulated_cluster():
    import urllib.request

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "kubesim", "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/version")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=2) as response:
            assert b"gitVersion" in response.read()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_periodic_jobs_are_registered():
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=get_queue("default").connection)
    scheduler.load_config_from_file("portal.cron")
    jobs = {job.func.__name__: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"dispatch", "sync_status", "sync_backups", "check_clusters", "sync_registries", "poll_sources",
                         "restore_drills", "apply_backup_retention", "check_missed_backups"}  # fmt: skip
    assert jobs["dispatch"].interval <= 30
    assert jobs["poll_sources"].interval == 60  # each source has its own interval; this is how often they are looked at
    assert (jobs["sync_registries"].queue_name, jobs["sync_registries"].interval) == ("sync", 900)
    assert jobs["apply_backup_retention"].queue_name == "storage"


def test_a_permanent_error_mid_upgrade_does_not_leave_the_instance_upgrading(
    deployed, kube_emulator, admin_unistra, maintainer, versions
):
    kube_emulator.inject(method="PATCH", path_regex="deployments/smile-core$", status=422, times=None)
    request = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    assert request.status == RequestStatus.FAILED
    assert "422" in request.result
    assert Instance.objects.get(pk=deployed.pk).status == InstanceStatus.DEGRADED
    kube_emulator.clear_faults()
    again = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    assert again.status == RequestStatus.SUCCEEDED, again.result
    assert Instance.objects.get(pk=deployed.pk).status == InstanceStatus.RUNNING


def test_a_failed_deletion_does_not_block_the_instance(deployed, kube_emulator, admin_unistra, maintainer):
    kube_emulator.inject(method="DELETE", path_regex="namespaces/saas-smile-new$", status=403, times=None)
    request = workflow.request_delete(ctx(admin_unistra), deployed)
    request.approve(ctx(maintainer))
    dispatcher.dispatch()
    run_worker()
    request.refresh_from_db()
    assert request.status == RequestStatus.FAILED
    instance = Instance.objects.get(pk=deployed.pk)
    assert instance.status == InstanceStatus.DEGRADED
    assert workflow.request_delete(ctx(admin_unistra), instance).status == RequestStatus.SUBMITTED


def test_sync_leaves_an_operation_s_status_alone(deployed, cluster):
    Instance.objects.filter(pk=deployed.pk).update(status=InstanceStatus.UPGRADING)
    sync_cluster(cluster)
    assert Instance.objects.get(pk=deployed.pk).status == InstanceStatus.UPGRADING


def test_a_sandbox_restart_ends_active_operations_and_their_requests(
    deployed, cluster, admin_unistra, maintainer, versions
):
    from instances.sandbox import restore_sandbox

    request = workflow.request_update(ctx(admin_unistra), deployed, version=versions["1.2.6"])
    request.approve(ctx(maintainer))
    dispatcher.dispatch()  # queued, never run
    Instance.objects.filter(pk=deployed.pk).update(status=InstanceStatus.UPGRADING)
    restore_sandbox(cluster)
    request.refresh_from_db()
    assert request.status == RequestStatus.FAILED
    assert "sandbox restarted" in request.result
    assert Operation.objects.get(request=request).status == OperationStatus.FAILED
    assert Operation.objects.filter(instance=deployed, status=OperationStatus.QUEUED, request=None).count() == 1
