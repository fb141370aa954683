"""What the engine leaves behind: audited transitions, failures told apart from bugs, hand-over at approval,
previews rendered once, and upgrades that send the cluster only what changed."""

import datetime
import logging

import pytest
from django.urls import reverse
from django.utils import timezone
from rq.registry import ScheduledJobRegistry

from core.jobs import get_queue
from core.messages import Message
from core.models import AuditEvent
from instances import workflow
from instances.choices import InstanceSize, InstanceStatus, OperationStatus, RequestStatus
from instances.engine import runner, steps
from instances.kube import kustomize
from instances.models import ChangeRequest, Cluster, Instance, Operation
from tests.conftest import ctx
from tests.engine_fixtures import approved_upgrade, run_worker, upgrade

pytestmark = pytest.mark.django_db(transaction=True)


def actions(obj, prefix):
    return list(
        AuditEvent.objects.filter(target_type=obj._meta.label_lower, target_id=str(obj.pk), action__startswith=prefix)
        .order_by("id")
        .values_list("action", "actor_label", "request_id")
    )


# --- every status change is audited --------------------------------------------------------------------------


def test_an_upgrade_leaves_every_status_change_in_the_audit_trail(deployed, admin_unistra, maintainer, versions):
    deploy = Operation.objects.get(instance=deployed)
    request = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    assert request.status == RequestStatus.SUCCEEDED, request.result
    operation = request.operations.get()

    tag = f"operation-{operation.pk}"
    assert actions(deployed, "instance.") == [
        ("instance.running", "engine", f"operation-{deploy.pk}"),  # provisioning -> running at creation
        ("instance.upgrading", "engine", tag),
        ("instance.running", "engine", tag),
    ]
    assert actions(operation, "operation.") == [
        ("operation.running", "engine", tag),
        ("operation.succeeded", "engine", tag),
    ]
    # The request's end is the operation's doing too.
    assert actions(request, "request.succeeded") == [("request.succeeded", "engine", tag)]
    running = AuditEvent.objects.filter(target_id=str(deployed.pk), action="instance.running").first()  # newest
    assert running.after == {"status": "running", "current_version": "1.2.6", "drift": False}
    assert running.organisation_id == deployed.organisation_id


# --- expected failures and bugs ---------------------------------------------------------------------------------


def test_a_bug_ends_the_operation_with_a_reference_and_keeps_the_traceback_for_maintainers(
    deployed, admin_unistra, viewer_unistra, maintainer, versions, monkeypatch, caplog, client
):
    def broken(*args, **kwargs):
        raise KeyError("spec.template")  # a bug, not a failure the engine expected

    # It strikes once the instance is marked upgrading, so the end of the operation must settle it.
    monkeypatch.setattr(steps, "apply_version", broken)
    with caplog.at_level(logging.ERROR, logger="instances.engine"):
        request = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    operation = request.operations.get()

    assert operation.status == OperationStatus.ERRORED and request.status == RequestStatus.FAILED
    reference = operation.error.removeprefix("internal error, reference ")
    assert len(reference) == 12 and request.result == operation.error
    assert "KeyError" in operation.traceback and reference in operation.traceback
    logged = [r for r in caplog.records if reference in r.getMessage()]
    assert logged and logged[0].exc_info[0] is KeyError  # the server log has the traceback under the reference
    assert "KeyError" not in str(operation.log) and "Traceback" not in str(operation.log)
    # The instance is not left upgrading: it is degraded, as after any failure mid-upgrade.
    assert Instance.objects.get(pk=deployed.pk).status == InstanceStatus.DEGRADED

    client.force_login(viewer_unistra)
    page = client.get(operation.get_absolute_url()).content.decode()
    assert reference in page and "KeyError" not in page and "Traceback" not in page
    client.force_login(maintainer)
    page = client.get(operation.get_absolute_url()).content.decode()
    assert reference in page and "KeyError" in page


def test_an_expected_failure_keeps_no_traceback(deployed, admin_unistra, maintainer, versions, controllers):
    controllers.fail_jobs = True
    request = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    operation = request.operations.get()
    assert operation.status == OperationStatus.FAILED
    assert operation.error.startswith("the pre-upgrade backup failed") and operation.traceback == ""


# --- hand-over at approval ---------------------------------------------------------------------------------------


def test_an_approved_due_request_is_queued_when_the_approval_commits(deployed, admin_unistra, maintainer, versions):
    request, operation = approved_upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])  # no dispatcher tick

    assert operation.status == OperationStatus.QUEUED
    assert ChangeRequest.objects.get(pk=request.pk).status == RequestStatus.RUNNING
    assert operation.rq_job_id in get_queue("operations").job_ids
    run_worker("operations")
    assert ChangeRequest.objects.get(pk=request.pk).status == RequestStatus.SUCCEEDED


def test_a_request_approved_for_later_is_given_to_the_scheduler_for_its_time(
    deployed, admin_unistra, maintainer, versions
):
    when = (timezone.now() + datetime.timedelta(hours=3)).replace(microsecond=0)
    request = workflow.request_update(ctx(admin_unistra), deployed, version=versions["1.2.6"], scheduled_for=when)
    workflow.approve(ctx(maintainer), request)

    assert ChangeRequest.objects.get(pk=request.pk).status == RequestStatus.SCHEDULED
    assert not Operation.objects.filter(request=request).exists()
    registry = ScheduledJobRegistry(queue=get_queue("default"))
    job_id = f"start-request-{request.pk}"
    assert job_id in registry.get_job_ids()
    scheduled = registry.get_scheduled_time(job_id)
    assert (scheduled if scheduled.tzinfo else scheduled.replace(tzinfo=datetime.UTC)) == when


def test_a_run_whose_operation_was_ended_meanwhile_reports_what_the_database_says(
    deployed, admin_unistra, maintainer, versions, monkeypatch
):
    def ended_elsewhere(operation, log, client):
        runner.end_operation(operation.pk, OperationStatus.FAILED, Message.plain("ended by the dispatcher"))
        return Message.plain("done")  # too late: the run's own ending changes nothing

    monkeypatch.setitem(steps.HANDLERS, "upgrade", ended_elsewhere)
    _request, operation = approved_upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])

    assert runner.run_operation(operation.pk) == f"operation {operation.pk}: failed"
    operation.refresh_from_db()
    assert operation.status == OperationStatus.FAILED and operation.error == "ended by the dispatcher"


def test_a_mail_that_fails_neither_fails_the_approval_nor_stops_the_hand_over(
    deployed, admin_unistra, maintainer, versions, monkeypatch, caplog
):
    def broken(pk):
        raise RuntimeError("the mail template is broken")

    monkeypatch.setattr(workflow, "notify_reviewed", broken)
    with caplog.at_level(logging.ERROR):
        request, operation = approved_upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])

    assert operation.status == OperationStatus.QUEUED
    assert ChangeRequest.objects.get(pk=request.pk).status == RequestStatus.RUNNING
    assert any("the mail template is broken" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


# --- the preview is rendered once --------------------------------------------------------------------------------


def test_the_preview_is_rendered_when_filed_and_not_on_every_view(
    deployed, admin_unistra, maintainer, versions, client, monkeypatch
):
    builds = []
    original = kustomize.Kustomize.build
    monkeypatch.setattr(kustomize.Kustomize, "build", lambda self, d: builds.append(d) or original(self, d))
    request = workflow.request_update(ctx(admin_unistra), deployed, version=versions["1.2.6"])
    run_worker("default")  # the preview job queued when the request was filed
    assert len(builds) == 1

    client.force_login(maintainer)
    for _ in range(3):
        assert "smile/core:1.2.6" in client.get(request.get_absolute_url()).content.decode()
    assert len(builds) == 1

    instance = Instance.objects.get(pk=deployed.pk)
    instance.save()  # saved, but nothing the render reads changed: the preview stands
    client.get(request.get_absolute_url())
    assert len(builds) == 1

    instance.size = InstanceSize.MEDIUM
    instance.save()  # the instance changed: render again, once
    for _ in range(2):
        assert "cpu: 500m" in client.get(request.get_absolute_url()).content.decode()
    assert len(builds) == 2

    # Its cluster changed, not the instance: the rendered NetworkPolicy follows the ingress controller's namespace.
    Cluster.objects.filter(pk=instance.cluster_id).update(ingress_namespace="traefik-system")
    for _ in range(2):
        assert "traefik-system" in client.get(request.get_absolute_url()).content.decode()
    assert len(builds) == 3


# --- upgrades at the floor ------------------------------------------------------------------------------------


def test_an_upgrade_sends_only_what_changed(deployed, kube_emulator, admin_unistra, maintainer, versions):
    kube_emulator.reset_log()
    request = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    assert request.status == RequestStatus.SUCCEEDED, request.result

    calls = [(r.method, r.path) for r in kube_emulator.requests]
    patched = sorted(path.rsplit("/", 2)[-2:][1] for method, path in calls if method == "PATCH")
    # The images follow the version in four objects (the restore CronJob runs the timemachine image); nothing else
    # changed, nothing else is sent.
    assert patched == ["smile-core", "smile-nginx", "smile-restore", "smile-timemachine"]
    assert len(calls) <= 12, calls
    assert not [c for c in calls if c[0] == "GET" and c[1].rstrip("/") in ("/api", "/apis")]  # no discovery
    assert not [c for c in calls if c[1].endswith(("/configmaps", "/services", "/networkpolicies"))]  # no prune


def test_a_change_in_the_set_of_objects_prunes_what_is_gone(
    deployed, kube_emulator, admin_unistra, maintainer, versions
):
    instance = Instance.objects.get(pk=deployed.pk)
    stray = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "left-over", "namespace": instance.namespace,
                          "labels": {"app.kubernetes.io/managed-by": "saas-portal",
                                     "saas-portal.io/instance": instance.slug}}}  # fmt: skip
    kube_emulator.seed(stray)
    record = dict(instance.applied_objects)
    record[f"v1/ConfigMap/{instance.namespace}/left-over"] = {"sha256": "0" * 64, "version": "1"}
    Instance.objects.filter(pk=instance.pk).update(applied_objects=record)

    request = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])

    assert request.status == RequestStatus.SUCCEEDED, request.result
    assert kube_emulator.get_object("v1", "ConfigMap", instance.namespace, "left-over") is None
    assert f"v1/ConfigMap/{instance.namespace}/left-over" not in Instance.objects.get(pk=instance.pk).applied_objects


def test_a_maintainer_full_resync_applies_everything_again(deployed, kube_emulator, maintainer, admin_unistra, client):
    url = reverse("instances:instance_resync", args=[deployed.slug])
    client.force_login(admin_unistra)
    assert client.post(url).status_code == 403
    client.force_login(maintainer)
    kube_emulator.reset_log()

    assert client.post(url).status_code == 302
    operation = Operation.objects.get(instance=deployed, full_resync=True)
    run_worker("operations")

    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    patched = [r for r in kube_emulator.requests if r.method == "PATCH"]
    assert len(patched) == len(Instance.objects.get(pk=deployed.pk).applied_objects)
    assert AuditEvent.objects.filter(action="instance.resync_requested", actor_label="maintainer").exists()


# --- engine messages in the reader's language ------------------------------------------------------------------


def test_engine_log_lines_and_results_are_shown_in_the_readers_language(
    deployed, admin_unistra, maintainer, versions, client
):
    request = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    operation = request.operations.get()
    client.force_login(admin_unistra)

    english = client.get(operation.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Upgrade started (attempt 1)" in english
    assert "backup Job smile-timemachine-pre-upgrade-" in english and "(Before upgrade)" in english

    client.cookies["django_language"] = "fr"
    french = client.get(operation.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "début de l\u2019opération Mise à jour (tentative 1)" in french
    assert "objets générés avec Kustomize" in french and "(Avant mise à jour)" in french
    assert "Upgrade started" not in french
    page = client.get(request.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "smile-new mise à jour en version 1.2.6" in page
    # What reads plain text (e-mails, the API) keeps the English.
    assert ChangeRequest.objects.get(pk=request.pk).result == "smile-new upgraded to 1.2.6"


def test_a_kubeconfig_that_no_longer_decrypts_fails_the_operation_clearly(
    deployed, admin_unistra, maintainer, versions, settings
):
    from cryptography.fernet import Fernet

    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the keys changed since it was stored
    request = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    operation = request.operations.get()
    assert operation.status == OperationStatus.FAILED
    assert operation.error == "the cluster's kubeconfig cannot be read: cannot decrypt: the encryption keys changed"
    assert operation.traceback == ""


def test_lost_encryption_keys_leave_a_clear_error_and_break_no_periodic_job_or_page(
    deployed, maintainer, settings, client
):
    from cryptography.fernet import Fernet

    from instances.engine.health import check_clusters
    from instances.engine.sync import sync_backups, sync_status

    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    assert "encryption keys changed" in check_clusters()
    sync_status(), sync_backups()  # they report the cluster's error and go on
    cluster = Cluster.objects.get()
    assert not cluster.reachable and cluster.last_error == "cannot decrypt: the encryption keys changed"
    client.force_login(maintainer)
    page = client.get(reverse("instances:cluster_list"))
    assert page.status_code == 200 and "encryption keys changed" in page.content.decode()


def test_an_unusable_kubeconfig_fails_the_operation_it_is_not_a_bug(deployed, admin_unistra, maintainer, versions):
    Cluster.objects.update(kubeconfig="clusters: [")
    request = upgrade(admin_unistra, maintainer, deployed, versions["1.2.6"])
    operation = request.operations.get()
    assert operation.status == OperationStatus.FAILED and operation.traceback == ""
    assert operation.error == "the cluster's kubeconfig cannot be read: the kubeconfig is not valid YAML"


def test_filing_and_approving_work_while_redis_is_down(deployed, admin_unistra, maintainer, versions, client, settings):
    from instances.engine import dispatcher

    healthy = settings.RQ_QUEUES
    settings.RQ_QUEUES = {name: {**queue, "URL": "redis://127.0.0.1:1/15"} for name, queue in healthy.items()}
    settings.REDIS_TIMEOUT = 1
    client.force_login(admin_unistra)
    response = client.post(
        reverse("instances:request_update", args=[deployed.slug]), {"version": versions["1.2.6"].pk, "comment": ""}
    )
    assert response.status_code == 302
    request = ChangeRequest.objects.get(instance=deployed, target_version=versions["1.2.6"])
    client.force_login(maintainer)
    response = client.post(reverse("instances:request_approve", args=[request.pk]), {"comment": ""})
    assert response.status_code == 302
    # The approval stands; the operation waits in PostgreSQL for Redis to come back.
    assert ChangeRequest.objects.get(pk=request.pk).status == RequestStatus.RUNNING
    operation = Operation.objects.get(request=request)
    assert operation.status == OperationStatus.QUEUED

    settings.RQ_QUEUES = healthy
    later = timezone.now() + datetime.timedelta(seconds=settings.PORTAL_DISPATCH_INTERVAL + 1)
    assert f"requeued [{operation.pk}]" in dispatcher.dispatch(now=later)
    run_worker("operations")
    assert ChangeRequest.objects.get(pk=request.pk).status == RequestStatus.SUCCEEDED
