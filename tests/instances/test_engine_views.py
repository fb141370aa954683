"""The browser UI of the deployment engine: operations, rollouts, backups, drift, clusters and the request preview."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from instances import workflow
from instances.choices import (
    BackupStatus,
    BackupTrigger,
    InstanceStatus,
    OperationKind,
    OperationStatus,
    RolloutState,
)
from instances.models import Backup, Cluster, Instance, Operation, RolloutSnapshot
from kubesim import kubeconfig_for
from tests.conftest import ctx

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-token"
KUBECONFIG = f"""apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://127.0.0.1:9
users:
- name: portal
  user:
    token: {SECRET}
contexts:
- name: prod
  context: {{cluster: prod, user: portal}}
current-context: prod
"""
DIFF = "--- applied\n+++ rendered\n@@ -1,2 +1,2 @@\n kind: Deployment\n-image: smile:1.2.4\n+image: smile:1.2.5\n"


def page(response) -> str:
    return response.content.decode()


@pytest.fixture
def operation(instance_unistra):
    now = timezone.now()
    return Operation.objects.create(
        kind=OperationKind.UPGRADE,
        instance=instance_unistra,
        status=OperationStatus.SUCCEEDED,
        attempts=1,
        started_at=now - datetime.timedelta(seconds=75),
        finished_at=now,
        log=[{"time": now.isoformat(), "level": "info", "message": "applied 12 objects"}],
        manifests="kind: Deployment\nimage: smile:1.2.5\n",
        manifests_sha256="ab" * 32,
        diff=DIFF,
    )


@pytest.fixture
def prod_cluster(db):
    return Cluster.objects.create(name="prod", kubeconfig=KUBECONFIG, context="prod")


@pytest.fixture
def closed_cluster(db):
    return Cluster.objects.create(name="sandbox", kubeconfig=kubeconfig_for("http://127.0.0.1:9"))


def backup(instance, status=BackupStatus.VERIFIED, hours_ago=1.0, minutes=3, name=None):
    finished = timezone.now() - datetime.timedelta(hours=hours_ago)
    return Backup.objects.create(
        instance=instance,
        job_name=name or f"backup-{instance.slug}-{hours_ago}-{status}",
        trigger=BackupTrigger.SCHEDULE,
        status=status,
        started_at=finished - datetime.timedelta(minutes=minutes),
        finished_at=finished,
    )


# --- the operation page --------------------------------------------------------------------------------------


def test_operation_page_sends_anonymous_users_to_login(client, operation):
    response = client.get(operation.get_absolute_url())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_operation_page_is_404_for_another_organisation(client, operation, admin_unicaen):
    client.force_login(admin_unicaen)
    assert client.get(operation.get_absolute_url()).status_code == 404


@pytest.mark.parametrize("who", ["viewer", "maintainer"])
def test_operation_page_shows_the_log_and_the_diff(client, operation, viewer_unistra, maintainer, who):
    client.force_login(viewer_unistra if who == "viewer" else maintainer)
    response = client.get(reverse("instances:operation_detail", args=[operation.pk]))
    assert response.status_code == 200
    content = page(response)
    assert "applied 12 objects" in content
    assert '<span class="diff-add">+image: smile:1.2.5</span>' in content
    assert '<span class="diff-del">-image: smile:1.2.4</span>' in content
    assert "ab" * 32 in content
    assert "1 min 15 s" in content
    assert instance_url(operation.instance) in content


def instance_url(instance) -> str:
    return reverse("instances:instance_detail", args=[instance.slug])


# --- the instance page ---------------------------------------------------------------------------------------


def test_instance_page_lists_operations_backups_cluster_and_drift(client, operation, instance_unistra, viewer_unistra):
    cluster = Cluster.objects.create(
        name="sandbox", kubeconfig=kubeconfig_for("http://x:1"), server_version="v1.32.0-kubesim"
    )
    Instance.objects.filter(pk=instance_unistra.pk).update(
        cluster=cluster, drift=True, drift_detail="Deployment/web runs smile:evil"
    )
    backup(instance_unistra, BackupStatus.VERIFIED, hours_ago=2, minutes=4)
    backup(instance_unistra, BackupStatus.FAILED, hours_ago=30, minutes=1)
    client.force_login(viewer_unistra)
    content = page(client.get(instance_url(instance_unistra)))
    assert operation.get_absolute_url() in content
    assert "sandbox" in content and "emulated" in content
    assert "Deployment/web runs smile:evil" in content
    assert content.count("<rect ") == 2
    assert 'fill="#198754"' in content and 'fill="#dc3545"' in content
    assert "live.js" in content
    assert reverse("instances:instance_rollout", args=[instance_unistra.slug]) in content


def test_rollout_partial_returns_the_snapshot_numbers(client, instance_unistra, viewer_unistra):
    RolloutSnapshot.objects.create(
        instance=instance_unistra,
        kind="Deployment",
        component="web",
        desired=3,
        updated=2,
        ready=1,
        available=1,
        state=RolloutState.PROGRESSING,
        message="Waiting for 2 pods",
    )
    client.force_login(viewer_unistra)
    response = client.get(reverse("instances:instance_rollout", args=[instance_unistra.slug]))
    assert response.status_code == 200
    content = page(response)
    assert "<html" not in content
    assert '<td class="text-end" data-field="desired">3</td>' in content
    assert '<td class="text-end" data-field="updated">2</td>' in content
    assert "Waiting for 2 pods" in content


def test_rollout_partial_is_scoped(client, instance_unistra, admin_unicaen):
    url = reverse("instances:instance_rollout", args=[instance_unistra.slug])
    assert client.get(url).status_code == 302
    client.force_login(admin_unicaen)
    assert client.get(url).status_code == 404


OVERDUE = "No verified backup in the last 26 hours"


def test_backup_overdue_banner_follows_the_26_hour_rule(client, instance_unistra, viewer_unistra):
    client.force_login(viewer_unistra)
    url = instance_url(instance_unistra)
    assert OVERDUE in page(client.get(url))  # never backed up
    backup(instance_unistra, BackupStatus.VERIFIED, hours_ago=27)
    backup(instance_unistra, BackupStatus.FAILED, hours_ago=1)
    assert OVERDUE in page(client.get(url))
    backup(instance_unistra, BackupStatus.SUCCEEDED, hours_ago=1)  # uploaded but not verified: it does not count
    assert OVERDUE in page(client.get(url))
    backup(instance_unistra, BackupStatus.VERIFIED, hours_ago=25)
    assert OVERDUE not in page(client.get(url))


def test_no_backup_banner_for_a_deleted_instance(client, instance_unistra, viewer_unistra):
    Instance.objects.filter(pk=instance_unistra.pk).update(status=InstanceStatus.DELETED)
    client.force_login(viewer_unistra)
    assert OVERDUE not in page(client.get(instance_url(instance_unistra)))


def test_instance_page_queries_do_not_grow_with_engine_history(client, instance_unistra, viewer_unistra):
    client.force_login(viewer_unistra)
    url = instance_url(instance_unistra)

    def add(count, start):
        for index in range(start, start + count):
            backup(instance_unistra, hours_ago=index + 1, name=f"job-{index}")
            RolloutSnapshot.objects.create(instance=instance_unistra, kind="Deployment", component=f"c{index}")
        Operation.objects.bulk_create(
            [
                Operation(kind=OperationKind.BACKUP, instance=instance_unistra, status=OperationStatus.SUCCEEDED)
                for _ in range(count)
            ]
        )

    add(3, 0)
    few = count_queries(client, url)
    add(40, 3)
    assert count_queries(client, url) == few


# --- the fleet -----------------------------------------------------------------------------------------------


def make_fleet(unistra, smile, version, count, start=0):
    instances = Instance.objects.bulk_create(
        [
            Instance(
                organisation=unistra,
                application=smile,
                slug=f"fleet-{index}",
                hostname=f"fleet-{index}.example.org",
                current_version=version,
                status=InstanceStatus.RUNNING,
                drift=index % 2 == 0,
            )
            for index in range(start, start + count)
        ]
    )
    for index, instance in enumerate(instances):
        backup(instance, hours_ago=1 if index % 3 else 30)
    return instances


def count_queries(client, url) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_fleet_shows_drift_and_backup_overdue(client, maintainer, instance_unistra):
    backup(instance_unistra, hours_ago=1)
    healthy = instance_unistra
    overdue = Instance.objects.create(
        organisation=healthy.organisation,
        application=healthy.application,
        slug="smile-stale",
        hostname="smile-stale.example.org",
        drift=True,
    )
    backup(overdue, hours_ago=30)
    client.force_login(maintainer)
    response = client.get(reverse("instances:instance_list"))
    rows = {instance.slug: instance for instance in response.context["instances"]}
    assert rows["smile-stale"].backup_overdue and not rows["smile-unistra"].backup_overdue
    content = page(response)
    assert content.count("backup overdue</span>") == 1
    assert content.count(">drift</span>") == 1


def test_fleet_runs_a_constant_number_of_queries(client, maintainer, unistra, smile, versions):
    client.force_login(maintainer)
    url = reverse("instances:instance_list")
    make_fleet(unistra, smile, versions["1.2.4"], 5)
    few = count_queries(client, url)
    make_fleet(unistra, smile, versions["1.2.4"], 45, start=5)
    response = client.get(url)
    assert len(response.context["instances"]) == 50
    assert count_queries(client, url) == few


# --- clusters ------------------------------------------------------------------------------------------------


def test_clusters_are_for_maintainers_only(client, admin_unistra, prod_cluster):
    client.force_login(admin_unistra)
    assert client.get(reverse("instances:cluster_list")).status_code == 403
    check = reverse("instances:cluster_check", args=[prod_cluster.pk])
    assert client.post(check).status_code == 403
    assert "Clusters" not in page(client.get(reverse("home")))


def test_clusters_page_shows_reachability_and_instance_count(client, maintainer, prod_cluster, instance_unistra):
    Instance.objects.filter(pk=instance_unistra.pk).update(cluster=prod_cluster)
    Cluster.objects.filter(pk=prod_cluster.pk).update(reachable=True, server_version="v1.32.0")
    client.force_login(maintainer)
    response = client.get(reverse("instances:cluster_list"))
    assert response.status_code == 200
    content = page(response)
    assert "v1.32.0" in content and ">reachable</span>" in content
    assert response.context["clusters"][0].instance_count == 1
    assert reverse("instances:cluster_list") in page(client.get(reverse("home")))  # the navbar link


def test_the_kubeconfig_is_never_shown(client, maintainer, prod_cluster, instance_unistra, operation):
    Instance.objects.filter(pk=instance_unistra.pk).update(cluster=prod_cluster)
    client.force_login(maintainer)
    client.post(reverse("instances:cluster_check", args=[prod_cluster.pk]))
    for url in (
        reverse("instances:cluster_list"),
        instance_url(instance_unistra),
        reverse("instances:instance_list"),
        operation.get_absolute_url(),
        reverse("instances:instance_rollout", args=[instance_unistra.slug]),
    ):
        assert SECRET not in page(client.get(url)), url


def test_check_now_records_an_unreachable_cluster(client, maintainer, closed_cluster):
    client.force_login(maintainer)
    response = client.post(reverse("instances:cluster_check", args=[closed_cluster.pk]), follow=True)
    assert response.status_code == 200
    closed_cluster.refresh_from_db()
    assert closed_cluster.reachable is False
    assert closed_cluster.last_error
    assert closed_cluster.checked_at is not None
    assert "is not reachable" in page(response)


def test_check_now_is_post_only(client, maintainer, closed_cluster):
    client.force_login(maintainer)
    assert client.get(reverse("instances:cluster_check", args=[closed_cluster.pk])).status_code == 405


# --- the request preview -------------------------------------------------------------------------------------


@pytest.fixture
def pending_update(instance_unistra, admin_unistra, versions):
    return workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"])


def test_preview_shows_the_diff_of_an_update(client, maintainer, pending_update, instance_unistra):
    Operation.objects.create(
        kind=OperationKind.DEPLOY,
        instance=instance_unistra,
        status=OperationStatus.SUCCEEDED,
        finished_at=timezone.now(),
        manifests="",
    )
    client.force_login(maintainer)
    content = page(client.get(pending_update.get_absolute_url()))
    assert "Preview" in content
    assert "Preview unavailable" not in content
    assert "kind: Deployment" in content
    assert '<span class="diff-add">' in content


def test_preview_is_for_maintainers_only(client, admin_unistra, pending_update):
    client.force_login(admin_unistra)
    response = client.get(pending_update.get_absolute_url())
    assert "preview" not in response.context
    assert "kind: Deployment" not in page(response)


def test_preview_failure_is_reported_not_raised(client, maintainer, pending_update, monkeypatch):
    from instances.engine import rendering

    def broken(spec):
        raise ValueError("no image for 1.2.6")

    monkeypatch.setattr(rendering, "render", broken)
    client.force_login(maintainer)
    response = client.get(pending_update.get_absolute_url())
    assert response.status_code == 200
    assert "Preview unavailable: no image for 1.2.6" in page(response)


def test_engine_pages_are_translated(client, operation, maintainer, closed_cluster):
    client.force_login(maintainer)
    client.cookies["django_language"] = "fr"
    instance_page = page(client.get(instance_url(operation.instance), HTTP_ACCEPT_LANGUAGE="fr"))
    assert "Aucune sauvegarde vérifiée au cours des 26 dernières heures" in instance_page
    assert "Opérations" in instance_page
    assert "Vérifier maintenant" in page(client.get(reverse("instances:cluster_list"), HTTP_ACCEPT_LANGUAGE="fr"))
