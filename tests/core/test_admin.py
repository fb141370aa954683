"""The Django admin: every change is audited; the audit trail and requests are read-only; kubeconfigs stay hidden."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from core.models import AuditEvent, Membership, Organisation
from instances.models import Cluster

pytestmark = pytest.mark.django_db

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://k8s.example.org"}}]
users: [{name: u, user: {token: very-secret-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


@pytest.fixture
def superuser(client):
    user = get_user_model().objects.create_superuser("root", "root@example.org", "pw-123456789")
    client.force_login(user)
    return user


def test_admin_changes_are_audited_with_before_and_after(client, superuser, unistra, admin_unicaen):
    url = reverse("admin:core_organisation_change", args=[unistra.pk])
    response = client.post(
        url,
        {
            "name": unistra.name,
            "slug": "unistra",
            "contact_emails": "new-team@unistra.fr",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-user": admin_unicaen.pk,
            "memberships-0-role": "viewer",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    changed = AuditEvent.objects.get(action="admin.core.organisation.changed")
    assert changed.actor == superuser
    assert changed.before["contact_emails"] == "team@unistra.fr"
    assert changed.after["contact_emails"] == "new-team@unistra.fr"
    assert changed.organisation_id == unistra.pk
    assert AuditEvent.objects.filter(action="admin.core.membership.created").exists()
    assert Membership.objects.filter(user=admin_unicaen, organisation=unistra).exists()


def test_user_changes_are_audited_without_the_password(client, superuser, admin_unistra):
    client.post(reverse("admin:auth_user_delete", args=[admin_unistra.pk]), {"post": "yes"})
    event = AuditEvent.objects.get(action="admin.auth.user.deleted")
    assert event.before["username"] == "admin-unistra"
    assert event.before["password"] == "(set)"


def test_the_audit_trail_cannot_be_edited_or_deleted_in_the_admin(client, superuser, unistra):
    client.post(reverse("admin:core_organisation_delete", args=[unistra.pk]), {"post": "yes"})
    event = AuditEvent.objects.get(action="admin.core.organisation.deleted")
    assert client.post(reverse("admin:core_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    client.post(reverse("admin:core_auditevent_change", args=[event.pk]), {"reason": "rewritten"})
    event.refresh_from_db()
    assert event.reason == ""
    assert client.get(reverse("admin:core_auditevent_add")).status_code == 403
    assert not Organisation.objects.filter(pk=unistra.pk).exists()


def test_kubeconfig_is_write_only_in_the_admin(client, superuser):
    data = {"name": "prod", "connection": "kubeconfig", "kubeconfig": KUBECONFIG, "context": "",
            "ingress_class": "nginx", "ingress_namespace": "ingress-nginx", "domain": "apps.example.org"}  # fmt: skip
    assert client.post(reverse("admin:instances_cluster_add"), data).status_code == 302
    cluster = Cluster.objects.get(name="prod")
    page = client.get(reverse("admin:instances_cluster_change", args=[cluster.pk])).content.decode()
    assert "very-secret-token" not in page
    assert client.post(reverse("admin:instances_cluster_change", args=[cluster.pk]),
                       {**data, "kubeconfig": "", "domain": "apps2.example.org"}).status_code == 302  # fmt: skip
    cluster.refresh_from_db()
    assert cluster.kubeconfig == KUBECONFIG
    assert cluster.domain == "apps2.example.org"
    events = AuditEvent.objects.filter(target_type="instances.cluster")
    assert events.count() == 2
    assert all("very-secret-token" not in str(e.before) + str(e.after) for e in events)


def test_a_broken_kubeconfig_is_a_form_error(client, superuser):
    data = {"name": "bad", "connection": "kubeconfig", "kubeconfig": "{not: [yaml", "ingress_class": "nginx",
            "ingress_namespace": "ingress-nginx", "domain": "apps.example.org"}  # fmt: skip
    response = client.post(reverse("admin:instances_cluster_add"), data)
    assert response.status_code == 200
    assert "not valid YAML" in response.content.decode()
    assert not Cluster.objects.exists()


def test_requests_are_read_only_in_the_admin(client, superuser, admin_unistra, instance_unistra, versions):
    from instances import workflow
    from tests.conftest import ctx

    request = workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"])
    client.post(reverse("admin:instances_changerequest_change", args=[request.pk]), {"status": "approved"})
    request.refresh_from_db()
    assert request.status == "submitted"
    assert client.get(reverse("admin:instances_changerequest_add")).status_code == 403


def test_inline_changes_are_audited_with_the_old_values(client, superuser, smile, versions):
    version = versions["1.2.4"]
    data = {"name": smile.name, "slug": smile.slug, "description": "", "kustomize_base": smile.kustomize_base,
            "images": json.dumps(smile.images), "backup_cronjob": smile.backup_cronjob,
            "release_pattern": smile.release_pattern, "scan_block_at": smile.scan_block_at,
            "components-TOTAL_FORMS": "0", "components-INITIAL_FORMS": "0",
            "versions-TOTAL_FORMS": "3", "versions-INITIAL_FORMS": "3"}  # fmt: skip
    for index, row in enumerate(smile.versions.order_by("-sort_key")):
        data[f"versions-{index}-id"] = row.pk
        data[f"versions-{index}-application"] = smile.pk
        data[f"versions-{index}-version"] = row.version
        if row.pk != version.pk:
            data[f"versions-{index}-is_available"] = "on"
    response = client.post(reverse("admin:instances_application_change", args=[smile.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.get(action="admin.instances.applicationversion.changed", target_id=str(version.pk))
    assert event.before["is_available"] is True
    assert event.after["is_available"] is False
