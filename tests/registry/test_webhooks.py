"""Push notifications: each registry's payload makes the portal sync the repository that changed, once the caller
proved it knows the registry's webhook secret. Distribution for real; Harbor and Quay through the fake servers."""

import json

import pytest

from core.jobs import get_queue
from registry.choices import ScanStatus
from registry.models import ImageTag, Registry, TagOverwrite
from tests.engine_fixtures import run_worker
from tests.registry.conftest import repository
from tests.registry.fake_registries import FakeRegistry, HarborScan, Vulnerability

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("registry_urls")]


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


@pytest.fixture
def synchronous_jobs(settings, queues):
    """Jobs run as they are enqueued, on the tests' own Redis database."""
    settings.RQ_ASYNC = False


def hook(registry: Registry) -> str:
    return f"/registry/hooks/{registry.pk}/"


@pytest.fixture
def post(client, django_capture_on_commit_callbacks):
    """POST a payload to a hook as a registry would, then run what the view left for the commit (django-rq
    enqueues on commit, and the test's transaction never commits)."""

    def send(url: str, payload, secret: str | None = None, **extra):
        body = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret is not None else {}
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, body, content_type="application/json", **headers, **extra)

    return send


def distribution_push(path: str, tag: str, pushed: str) -> dict:
    """Distribution's notification envelope, as the registry's ``notifications.endpoints`` send it."""
    target = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": path, "tag": tag}
    return {
        "events": [
            {"id": "e1", "action": "pull", "target": {**target, "repository": "other/repo"}},
            {"id": "e2", "action": "push", "target": {**target, "digest": pushed}, "request": {"method": "PUT"}},
        ]
    }


@pytest.fixture
def core(local, namespace):
    return repository(local, f"{namespace}/core")


# --- Distribution, for real ----------------------------------------------------------------------------------------


def test_a_distribution_push_syncs_the_repository(post, server, local, core, synchronous_jobs):
    pushed = server.push(core.path, "1.2.7")

    response = post(hook(local), distribution_push(core.path, "1.2.7", pushed), local.webhook_secret)

    assert response.status_code == 202
    assert response.json() == {"queued": [core.path]}
    tag = ImageTag.objects.get(repository=core)
    assert (tag.tag, tag.digest, tag.present) == ("1.2.7", pushed, True)


def test_a_replayed_event_syncs_again_without_duplicate_or_alert(post, server, local, core, synchronous_jobs):
    pushed = server.push(core.path, "1.2.7")
    event = distribution_push(core.path, "1.2.7", pushed)

    for _ in range(3):
        assert post(hook(local), event, local.webhook_secret).status_code == 202

    assert list(ImageTag.objects.filter(repository=core).values_list("tag", "digest")) == [("1.2.7", pushed)]
    assert TagOverwrite.objects.count() == 0


def test_a_burst_of_notifications_is_synced_by_the_worker(post, server, local, core, queues):
    first = server.push(core.path, "1.2.7", payload=b"1.2.7")
    assert post(hook(local), distribution_push(core.path, "1.2.7", first), local.webhook_secret).status_code == 202
    second = server.push(core.path, "1.2.8", payload=b"1.2.8")
    assert post(hook(local), distribution_push(core.path, "1.2.8", second), local.webhook_secret).status_code == 202
    assert not ImageTag.objects.exists()  # queued, not run in the request
    assert set(get_queue("sync").job_ids) == {f"registry-sync-{core.pk}"}

    run_worker("sync")

    assert dict(ImageTag.objects.filter(repository=core).values_list("tag", "digest")) == {
        "1.2.7": first,
        "1.2.8": second,
    }


@pytest.mark.parametrize(
    "send",
    [
        {"HTTP_AUTHORIZATION": "{secret}"},  # the bare secret, as Harbor's "auth header" sends it
        {"HTTP_X_PORTAL_WEBHOOK_SECRET": "{secret}"},
        {"QUERY_STRING": "secret={secret}"},
    ],
    ids=["bare-authorization", "x-portal-header", "query"],
)
def test_the_other_ways_to_present_the_secret(post, server, local, core, synchronous_jobs, send):
    pushed = server.push(core.path, "1.2.7")
    extra = {key: value.format(secret=local.webhook_secret) for key, value in send.items()}

    response = post(hook(local), distribution_push(core.path, "1.2.7", pushed), **extra)

    assert response.status_code == 202
    assert ImageTag.objects.filter(repository=core, digest=pushed).exists()


def test_an_event_without_push_or_delete_syncs_nothing(post, local, core, synchronous_jobs):
    pull = {"events": [{"action": "pull", "target": {"repository": core.path, "tag": "1.2.7"}}]}

    response = post(hook(local), pull, local.webhook_secret)

    assert response.status_code == 200
    assert response.json()["queued"] == []
    assert get_queue("sync").count == 0


# --- Harbor and Quay, through the fake servers ---------------------------------------------------------------------


@pytest.fixture
def fake():
    with FakeRegistry() as server:
        yield server


def test_harbor_push_and_scan_notifications(post, fake, synchronous_jobs, fast_registry_calls):
    harbor = Registry.objects.create(name="harbor", kind="harbor", url=fake.url)
    repo = repository(harbor, "library/smile")
    fake.add_harbor_artifact(repo.path, digest(1), tags=["1.2.7"], scan=HarborScan("Running"))

    def notify(kind):
        payload = {"type": kind, "occur_at": 1719000000, "operator": "ci", "event_data": {
            "resources": [{"digest": digest(1), "tag": "1.2.7"}],
            "repository": {"name": "smile", "namespace": "library", "repo_full_name": repo.path},
        }}  # fmt: skip
        return post(hook(harbor), payload, harbor.webhook_secret)

    assert notify("PUSH_ARTIFACT").status_code == 202
    assert ImageTag.objects.get(repository=repo, tag="1.2.7").scan_status == ScanStatus.PENDING

    fake.harbor_artifacts[repo.path][0].scan = HarborScan("Success", (Vulnerability("CVE-2024-6387", "Critical"),))
    assert notify("SCANNING_COMPLETED").status_code == 202

    tag = ImageTag.objects.get(repository=repo, tag="1.2.7")
    assert (tag.scan_status, tag.vulnerability_counts) == (ScanStatus.FAILED, {"critical": 1})
    assert tag.vulnerabilities == [{"id": "CVE-2024-6387", "severity": "critical"}]
    # An event Harbor sends that changes no tag (a pull, a quota warning) is acknowledged, not synced.
    assert notify("PULL_ARTIFACT").status_code == 200


def test_quay_repository_notification_with_the_secret_in_the_query(post, fake, synchronous_jobs, fast_registry_calls):
    quay = Registry.objects.create(name="quay", kind="quay", url=fake.url)
    repo = repository(quay, "smile/core")
    fake.add_quay_tag(repo.path, "1.2.7", digest(7))
    payload = {
        "repository": repo.path,
        "namespace": "smile",
        "name": "core",
        "docker_url": "quay.io/smile/core",
        "homepage": "https://quay.io/repository/smile/core",
        "updated_tags": ["1.2.7"],
    }

    response = post(f"{hook(quay)}?secret={quay.webhook_secret}", payload)

    assert response.status_code == 202
    tag = ImageTag.objects.get(repository=repo)
    assert (tag.tag, tag.digest, tag.scan_status) == ("1.2.7", digest(7), ScanStatus.PASSED)
    assert post(hook(quay), payload, "wrong").status_code == 403


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("harbor", {"type": "PUSH_ARTIFACT", "event_data": {}}),
        ("harbor", {"type": "PUSH_ARTIFACT", "event_data": {"repository": {"repo_full_name": 42}}}),
        ("quay", {"updated_tags": ["1.2.7"]}),
        ("quay", {"repository": ""}),
        ("distribution", {"events": "push"}),
        ("distribution", {"events": [{"action": "push"}]}),
        ("distribution", {"events": ["push"]}),
        ("distribution", {}),
    ],
)
def test_a_payload_of_the_wrong_shape_is_400(post, kind, payload, synchronous_jobs):
    registry = Registry.objects.create(name=kind, kind=kind, url="https://registry.example.org")

    response = post(hook(registry), payload, registry.webhook_secret)

    assert response.status_code == 400
    assert "Malformed payload" in response.json()["detail"]


# --- refusals ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["wrong", "", None])
def test_a_wrong_or_missing_secret_is_403_before_the_payload_is_read(post, local, core, secret, synchronous_jobs):
    for payload in (distribution_push(core.path, "1.2.7", digest(1)), "{not json"):
        response = post(hook(local), payload, secret)

        assert response.status_code == 403
    assert not ImageTag.objects.exists()


def test_the_secret_of_another_registry_is_refused(post, local, core, synchronous_jobs):
    other = Registry.objects.create(name="other", kind="distribution", url="https://registry.example.org")

    response = post(hook(local), distribution_push(core.path, "1.2.7", digest(1)), other.webhook_secret)

    assert response.status_code == 403


@pytest.mark.parametrize("body", ["{not json", "[]", json.dumps([{"events": []}]), '"events"', b"\xff\xfe"])
def test_a_body_that_is_no_json_object_is_400(post, local, body, synchronous_jobs):
    response = post(hook(local), body, local.webhook_secret)

    assert response.status_code == 400


def test_a_payload_over_a_megabyte_is_413(post, local, core, synchronous_jobs):
    padding = "x" * (1024 * 1024)
    payload = {"events": [{"action": "push", "target": {"repository": core.path, "tag": "1.2.7"}}], "pad": padding}

    response = post(hook(local), payload, local.webhook_secret)

    assert response.status_code == 413
    assert not ImageTag.objects.exists()


def test_a_repository_the_portal_does_not_know_is_404(post, server, local, core, synchronous_jobs):
    pushed = server.push(f"{core.path}-unknown", "1.2.7")

    response = post(hook(local), distribution_push(f"{core.path}-unknown", "1.2.7", pushed), local.webhook_secret)

    assert response.status_code == 404
    assert not ImageTag.objects.exists()


def test_a_repository_of_another_registry_is_404(post, local, namespace, synchronous_jobs):
    other = Registry.objects.create(name="other", kind="distribution", url="https://registry.example.org")
    repository(other, f"{namespace}/core")

    response = post(hook(local), distribution_push(f"{namespace}/core", "1.2.7", digest(1)), local.webhook_secret)

    assert response.status_code == 404


def test_an_unknown_registry_is_404(post, local, synchronous_jobs):
    response = post(f"/registry/hooks/{local.pk + 1000}/", {"events": []}, local.webhook_secret)

    assert response.status_code == 404


def test_get_is_405(client, local):
    response = client.get(hook(local), HTTP_AUTHORIZATION=f"Bearer {local.webhook_secret}")

    assert response.status_code == 405
