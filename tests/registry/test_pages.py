"""What people see of the registry: the maintainers' registry pages, the instance page (images, newer versions,
overwrite banner), the version pickers of the forms and of the API. Against a real Distribution registry."""

import pytest
from django.urls import reverse

from core.models import AuditEvent
from instances.catalogue import refresh_versions
from instances.choices import RequestStatus
from instances.models import ChangeRequest, Instance
from registry.models import ImageTag, Registry, TagOverwrite
from registry.sync import sync_registry
from tests.registry.conftest import fail_scan, repository, version

pytestmark = pytest.mark.django_db


@pytest.fixture
def synchronous_jobs(settings, queues):
    settings.RQ_ASYNC = False


@pytest.fixture
def blocked(smile, released):
    """1.2.6's nginx fails its scan with one Critical CVE: the version is blocked."""
    repositories, _digests = released
    fail_scan(repositories["nginx"], "1.2.6", cve="CVE-2024-6387")
    refresh_versions(smile)
    return version(smile, "1.2.6")


def pin(instance: Instance, repositories, digests, tag: str) -> None:
    """The instance runs ``tag``, pinned by digest, as an approval would have recorded it."""
    instance.images = {
        f"smile-{component}": {"repository": repo.reference, "tag": tag, "digest": digests[(component, tag)]}
        for component, repo in repositories.items()
    }
    instance.current_version = version(instance.application, tag)
    instance.save()


def test_only_maintainers_see_the_registries(client, admin_unistra, local):
    client.force_login(admin_unistra)
    assert client.get(reverse("instances:registry_list")).status_code == 403
    assert client.get(local.get_absolute_url()).status_code == 403
    assert client.post(reverse("instances:registry_sync", args=[local.pk])).status_code == 403


def test_the_anonymous_are_sent_to_log_in(client, local):
    response = client.get(local.get_absolute_url())
    assert response.status_code == 302 and "login" in response["Location"]


def test_the_list_counts_repositories_errors_and_alerts(client, maintainer, local, down, namespace, released):
    repositories, _digests = released
    repository(down, f"{namespace}/core")
    sync_registry(down)
    TagOverwrite.objects.create(
        tag=ImageTag.objects.get(repository=repositories["core"], tag="1.2.4"), old_digest="sha256:a", new_digest="b"
    )
    client.force_login(maintainer)

    page = client.get(reverse("instances:registry_list")).content.decode()

    assert "local" in page and "down" in page
    assert "1 overwritten tag" in page
    assert "cannot be reached" in page  # the unreachable registry's error


def test_the_registry_page_shows_tags_scans_cves_and_who_runs_what(
    client, maintainer, local, smile, instance_unistra, blocked, released
):
    repositories, digests = released
    pin(instance_unistra, repositories, digests, "1.2.5")
    client.force_login(maintainer)

    page = client.get(local.get_absolute_url()).content.decode()

    assert repositories["core"].reference in page and repositories["nginx"].reference in page
    assert digests[("core", "1.2.5")] in page  # the full digest, in the title of its short form
    assert "CVE-2024-6387" in page and "failed" in page and "not scanned" in page
    assert "smile-unistra" in page  # runs 1.2.5's digests
    assert reverse("registry_api:webhook", args=[local.pk]) in page
    assert local.webhook_secret not in page


def test_the_registry_page_makes_a_constant_number_of_queries(
    client, maintainer, local, server, namespace, released, django_assert_max_num_queries
):
    client.force_login(maintainer)
    with django_assert_max_num_queries(20) as few:
        client.get(local.get_absolute_url())
    for index in range(3):
        extra = repository(local, f"{namespace}/extra{index}")
        server.push(extra.path, "1.0.0", payload=f"extra {index}".encode())
    sync_registry(Registry.objects.get(pk=local.pk))
    with django_assert_max_num_queries(20) as many:
        client.get(local.get_absolute_url())
    assert len(many) == len(few)


def test_sync_now_reads_the_registry(
    client, maintainer, local, server, namespace, synchronous_jobs, django_capture_on_commit_callbacks
):
    repo = repository(local, f"{namespace}/core")
    server.push(repo.path, "2.0.0", payload=b"pushed before the click")
    client.force_login(maintainer)

    with django_capture_on_commit_callbacks(execute=True):  # django-rq enqueues once the transaction commits
        response = client.post(reverse("instances:registry_sync", args=[local.pk]))

    assert response.status_code == 302
    assert ImageTag.objects.filter(repository=repo, tag="2.0.0").exists()
    assert Registry.objects.get(pk=local.pk).last_sync_at is not None


def test_an_overwrite_alert_shows_on_both_pages_until_resolved(
    client, maintainer, admin_unistra, local, server, smile, instance_unistra, released
):
    repositories, digests = released
    pin(instance_unistra, repositories, digests, "1.2.5")
    core = repositories["core"]
    server.push(core.path, "1.2.5", payload=b"pushed twice")
    sync_registry(Registry.objects.get(pk=local.pk))
    alert = TagOverwrite.objects.get()
    assert alert.old_digest == digests[("core", "1.2.5")]

    client.force_login(admin_unistra)
    assert "Tag overwritten" in client.get(instance_unistra.get_absolute_url()).content.decode()
    client.force_login(maintainer)
    assert f"overwrite-{alert.pk}" in client.get(local.get_absolute_url()).content.decode()

    response = client.post(reverse("instances:overwrite_resolve", args=[alert.pk]))

    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.resolved_at is not None and alert.resolved_by == "maintainer"
    assert AuditEvent.objects.filter(action="registry.overwrite_resolved").count() == 1
    assert "Tag overwritten" not in client.get(instance_unistra.get_absolute_url()).content.decode()
    assert f"overwrite-{alert.pk}" not in client.get(local.get_absolute_url()).content.decode()


def test_the_instance_page_shows_images_and_why_newer_versions_are_blocked(
    client, admin_unistra, smile, instance_unistra, blocked, released
):
    repositories, digests = released
    pin(instance_unistra, repositories, digests, "1.2.4")
    client.force_login(admin_unistra)

    page = client.get(instance_unistra.get_absolute_url()).content.decode()

    assert digests[("core", "1.2.4")] in page and digests[("nginx", "1.2.4")] in page
    assert "1.2.5" in page and "deployable" in page
    assert "nginx: 1 vulnerability at Critical (CVE-2024-6387)" in page


def test_an_admin_is_offered_only_deployable_versions(client, admin_unistra, instance_unistra, blocked):
    client.force_login(admin_unistra)
    url = reverse("instances:request_update", args=[instance_unistra.slug])

    form = client.get(url).context["form"]

    assert [v.version for v in form.fields["version"].queryset] == ["1.2.5"]
    assert "override_reason" not in form.fields
    assert [v.version for v in form.blocked_versions] == ["1.2.6"]
    response = client.post(url, {"version": blocked.pk})
    assert response.status_code == 200 and "version" in response.context["form"].errors
    assert not ChangeRequest.objects.exists()


def test_a_maintainer_overrides_a_blocked_version_with_a_reason(client, maintainer, instance_unistra, blocked):
    client.force_login(maintainer)
    url = reverse("instances:request_update", args=[instance_unistra.slug])
    form = client.get(url).context["form"]
    labels = [str(label) for _value, label in form.fields["version"].choices]
    assert "SMILE 1.2.6 (blocked by the scan policy)" in labels and "SMILE 1.2.5" in labels

    without = client.post(url, {"version": blocked.pk})
    assert "override_reason" in without.context["form"].errors
    reason = "fix for the exam session; CVE not reachable"
    response = client.post(url, {"version": blocked.pk, "override_reason": reason})

    assert response.status_code == 302
    request = ChangeRequest.objects.get()
    assert request.target_version == blocked and request.status == RequestStatus.SUBMITTED
    event = AuditEvent.objects.get(action="version.override")
    assert event.reason == reason and event.after["blockers"][0]["cves"] == ["CVE-2024-6387"]


def test_the_api_lists_deployable_versions_and_says_why_others_are_blocked(client, admin_unistra, smile, blocked):
    client.force_login(admin_unistra)

    body = client.get(f"/api/v1/applications/{smile.slug}/").json()

    assert body["versions"] == ["1.2.5", "1.2.4"]
    assert body["blocked_versions"][0]["version"] == "1.2.6"
    assert body["blocked_versions"][0]["blockers"] == ["nginx: 1 vulnerability at Critical (CVE-2024-6387)"]


@pytest.mark.parametrize(("who", "status"), [("admin_unistra", 400), ("maintainer", 201)])
def test_only_a_maintainer_files_a_blocked_version_through_the_api(
    request, client, instance_unistra, blocked, who, status
):
    client.force_login(request.getfixturevalue(who))
    payload = {"kind": "update", "instance": instance_unistra.slug, "version": "1.2.6", "override_reason": "urgent fix"}

    response = client.post("/api/v1/requests/", payload, content_type="application/json")

    assert response.status_code == status, response.content
    if status == 400:
        assert "version" in response.json()
    assert ChangeRequest.objects.count() == (1 if status == 201 else 0)


def test_a_host_differing_only_in_case_is_the_same_registry(local):
    from registry.guard import find_registry

    registry, path = find_registry(f"{local.host.upper()}/smile/core")
    assert registry == local and path == "smile/core"


def test_approving_a_blocked_version_in_the_ui_asks_for_a_reason(
    client, admin_unistra, maintainer, instance_unistra, released, django_capture_on_commit_callbacks
):
    from instances import workflow
    from tests.conftest import ctx

    repositories, _digests = released
    request = workflow.request_update(
        ctx(admin_unistra), instance_unistra, version=version(instance_unistra.application, "1.2.6")
    )
    fail_scan(repositories["core"], "1.2.6")  # found vulnerable after it was filed
    refresh_versions(instance_unistra.application)
    client.force_login(maintainer)
    assert "Blocked by the scan policy" in client.get(request.get_absolute_url()).content.decode()
    url = reverse("instances:request_approve", args=[request.pk])

    refused = client.post(url, {"comment": ""})

    assert "comment" in refused.context["approve_form"].errors
    request.refresh_from_db()
    assert request.status == RequestStatus.SUBMITTED
    with django_capture_on_commit_callbacks():  # the hand-over to the engine is not under test here
        client.post(url, {"comment": "accepted risk until 1.2.7"})
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED
    assert request.images["smile-core"]["digest"].startswith("sha256:")
