"""Approval pins a version's images to the digests its tags point to; a blocked version needs a maintainer's
reason, audited. Against a real Distribution registry, synced by the portal."""

import pytest
from django.core.exceptions import ValidationError

from core.errors import Conflict
from core.models import AuditEvent
from instances import workflow
from instances.catalogue import refresh_versions
from instances.choices import RequestStatus
from instances.engine.rendering import render_instance
from instances.kube.render import pod_spec
from instances.models import ChangeRequest
from registry.sync import sync_registry
from tests.conftest import ctx
from tests.registry.conftest import fail_scan, version

pytestmark = pytest.mark.django_db


def container_images(rendered) -> set[str]:
    return {
        container["image"]
        for obj in rendered.objects
        if (pod := pod_spec(obj)) is not None
        for container in [*pod.get("initContainers", []), *pod["containers"]]
    }


def test_approval_pins_every_component_to_its_digest(smile, admin_unistra, maintainer, instance_unistra, released):
    repositories, digests = released
    request = workflow.request_update(ctx(admin_unistra), instance_unistra, version=version(smile, "1.2.6"))
    assert request.images == {}

    workflow.approve(ctx(maintainer), request)

    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED
    for component, repo in repositories.items():
        assert request.images[f"smile-{component}"] == {
            "repository": repo.reference,
            "tag": "1.2.6",
            "digest": digests[component, "1.2.6"],
        }
    # Images of the application's own map (no registry component) keep their tag and have no digest.
    assert request.images["smile-timemachine"] == {
        "repository": "registry.example.org/smile/timemachine",
        "tag": "1.2.6",
    }
    assert request.images["postgres"] == {"repository": "docker.io/library/postgres", "tag": "16.4-alpine"}


def test_a_tag_repushed_after_approval_changes_nothing_approved(
    server, local, smile, admin_unistra, maintainer, instance_unistra, released
):
    repositories, digests = released
    request = workflow.request_update(ctx(admin_unistra), instance_unistra, version=version(smile, "1.2.6"))
    workflow.approve(ctx(maintainer), request)
    request.refresh_from_db()
    approved = request.images

    moved = server.push(repositories["core"].path, "1.2.6", payload=b"a rebuilt core")
    sync_registry(local)

    # The catalogue follows the registry (so the test is not vacuous)...
    assert version(smile, "1.2.6").images["smile-core"]["digest"] == moved != digests["core", "1.2.6"]
    # ...but what was approved is what runs.
    request.refresh_from_db()
    assert request.images == approved
    assert request.images["smile-core"]["digest"] == digests["core", "1.2.6"]


def test_the_rendered_overlay_pulls_by_the_approved_digests(
    server, local, smile, admin_unistra, maintainer, instance_unistra, released
):
    repositories, digests = released
    request = workflow.request_update(ctx(admin_unistra), instance_unistra, version=version(smile, "1.2.6"))
    workflow.approve(ctx(maintainer), request)
    request.refresh_from_db()
    server.push(repositories["nginx"].path, "1.2.6", payload=b"a rebuilt nginx")
    sync_registry(local)

    rendered = render_instance(instance_unistra, request.target_version, request.images)

    images = container_images(rendered)
    for component, repo in repositories.items():
        assert f"{repo.reference}:1.2.6@{digests[component, '1.2.6']}" in images
    # No image of the registry is pulled by its tag alone.
    host = repositories["core"].registry.host
    assert all("@sha256:" in image for image in images if image.startswith(host))


def test_a_version_blocked_at_approval_needs_a_reason(smile, admin_unistra, maintainer, instance_unistra, released):
    repositories, digests = released
    request = workflow.request_update(ctx(admin_unistra), instance_unistra, version=version(smile, "1.2.6"))
    fail_scan(repositories["core"], "1.2.6")  # the scanner finished after the request was filed

    for reason in ("", "   "):
        with pytest.raises(Conflict) as refused:
            workflow.approve(ctx(maintainer), request, reason=reason)
        assert refused.value.field == "reason"
        assert "core" in str(refused.value.message) and "CVE-2024-6387" in str(refused.value.message)
    request.refresh_from_db()
    assert (request.status, request.images) == (RequestStatus.SUBMITTED, {})
    assert not AuditEvent.objects.filter(action="version.override").exists()

    workflow.approve(ctx(maintainer), request, reason="  the CVE needs ssh, which SMILE does not run  ")

    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED
    assert request.images["smile-core"]["digest"] == digests["core", "1.2.6"]
    event = AuditEvent.objects.get(action="version.override")
    assert event.reason == "the CVE needs ssh, which SMILE does not run"
    assert (event.actor, event.target_id, event.organisation_id) == (
        maintainer,
        str(request.pk),
        request.organisation_id,
    )
    assert event.after["version"] == "1.2.6"
    assert [(b["component"], b["cves"]) for b in event.after["blockers"]] == [("core", ["CVE-2024-6387"])]


def test_a_version_gone_from_the_registry_cannot_be_approved(
    server, local, smile, admin_unistra, maintainer, instance_unistra, released
):
    repositories, digests = released
    request = workflow.request_update(ctx(admin_unistra), instance_unistra, version=version(smile, "1.2.6"))
    if not server.delete(repositories["nginx"].path, digests["nginx", "1.2.6"]):
        pytest.skip("this registry does not allow deleting manifests")
    sync_registry(local)

    with pytest.raises(Conflict) as refused:
        workflow.approve(ctx(maintainer), request, reason="whatever")

    assert refused.value.field == "version"
    assert repositories["nginx"].reference in str(refused.value.message)
    request.refresh_from_db()
    assert request.status == RequestStatus.SUBMITTED


def test_an_admin_cannot_file_for_a_blocked_version(smile, admin_unistra, instance_unistra, released):
    repositories, _digests = released
    fail_scan(repositories["nginx"], "1.2.6")
    refresh_versions(smile)  # not a sync: the registry has no scanner and would say "not scanned" again
    blocked = version(smile, "1.2.6")
    assert not blocked.deployable

    for reason in ("", "I know what I am doing"):  # an admin's reason is no override
        with pytest.raises(ValidationError) as refused:
            workflow.request_update(ctx(admin_unistra), instance_unistra, version=blocked, override_reason=reason)
        [message] = refused.value.message_dict["version"]
        assert "1.2.6" in message and "nginx" in message and "CVE-2024-6387" in message
    assert not ChangeRequest.objects.filter(instance=instance_unistra).exists()


def test_a_maintainer_files_a_blocked_version_with_a_reason(smile, maintainer, maintainer2, instance_unistra, released):
    repositories, digests = released
    fail_scan(repositories["nginx"], "1.2.6")
    refresh_versions(smile)  # not a sync: the registry has no scanner and would say "not scanned" again
    blocked = version(smile, "1.2.6")

    with pytest.raises(ValidationError):
        workflow.request_update(ctx(maintainer), instance_unistra, version=blocked)
    request = workflow.request_update(
        ctx(maintainer), instance_unistra, version=blocked, override_reason="hotfix for a data-loss bug"
    )

    event = AuditEvent.objects.get(action="version.override")
    assert (event.reason, event.actor, event.target_id) == ("hotfix for a data-loss bug", maintainer, str(request.pk))
    assert [b["component"] for b in event.after["blockers"]] == ["nginx"]
    # Another maintainer approving it sees the blocker again and must give a reason too.
    with pytest.raises(Conflict):
        workflow.approve(ctx(maintainer2), request)
    workflow.approve(ctx(maintainer2), request, reason="agreed: hotfix")
    request.refresh_from_db()
    assert request.images["smile-nginx"]["digest"] == digests["nginx", "1.2.6"]
    assert AuditEvent.objects.filter(action="version.override").count() == 2
