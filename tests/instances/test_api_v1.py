"""API v1: where it lives, its limits (page size, body size, nesting), its schema and docs, and the endpoints of
what the engine did (operations with their log, an instance's rollout, its backups)."""

import json

import pytest
from django.contrib.staticfiles import finders
from django.utils import timezone, translation
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from core.messages import Message
from core.models import ApiToken, AuditEvent
from instances.choices import BackupStatus, BackupTrigger, OperationKind, OperationStatus, RolloutState
from instances.engine.log import log_line
from instances.models import Backup, ChangeRequest, Operation, RolloutSnapshot

STALE = "the worker stopped responding (last sign of life %(time)s UTC); the operation resumes"
UPDATE = {"kind": "update", "instance": "smile-unistra", "version": "1.2.6"}


def gettext_in(language: str, text: str) -> str:
    with translation.override(language):
        return translation.gettext(text)


def client_for(user) -> APIClient:
    client = APIClient()
    _token, secret = ApiToken.objects.create(user=user, name="tests", last_used_at=timezone.now())
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_the_unversioned_root_redirects_to_v1(db):
    response = APIClient().get("/api/")

    assert response.status_code == 302 and response["Location"] == "/api/v1/"


def test_a_huge_limit_gives_pages_of_500(maintainer, admin_unistra, unistra):
    AuditEvent.objects.bulk_create(
        AuditEvent(actor_label="x", action="test.event", target_type="t", target_id=str(i)) for i in range(501)
    )

    response = client_for(maintainer).get("/api/v1/audit/?limit=100000000&action=test.event")

    assert response.status_code == 200
    body = response.json()
    assert (body["count"], len(body["results"])) == (501, 500)
    assert "limit=500" in body["next"]


def test_a_huge_offset_is_an_empty_page(maintainer):
    response = client_for(maintainer).get(f"/api/v1/instances/?offset={10**30}")

    assert response.status_code == 200 and response.json()["results"] == []


@pytest.mark.parametrize("depth", [21, 100_000])
def test_json_nested_too_deep_is_400(admin_unistra, instance_unistra, versions, depth):
    body = '{"kind": "update", "instance": "smile-unistra", "version": "1.2.6", "comment": '
    body += "[" * depth + "]" * depth + "}"

    response = client_for(admin_unistra).post("/api/v1/requests/", body, content_type="application/json")

    assert response.status_code == 400
    assert "nested deeper than 20 levels" in response.json()["detail"]
    assert not ChangeRequest.objects.exists()


def test_json_within_the_nesting_limit_is_read(admin_unistra, instance_unistra, versions):
    comment = json.dumps([[["deep enough"]]])
    body = json.dumps({**UPDATE, "comment": comment})

    response = client_for(admin_unistra).post("/api/v1/requests/", body, content_type="application/json")

    assert response.status_code == 201


def test_an_oversized_body_is_413_and_unread(settings, admin_unistra, instance_unistra, versions):
    settings.PORTAL_API_MAX_BODY_BYTES = 1000
    body = json.dumps({**UPDATE, "comment": "x" * 2000})

    response = client_for(admin_unistra).post("/api/v1/requests/", body, content_type="application/json")

    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is too large: at most 1000 bytes."}
    assert not ChangeRequest.objects.exists()


def test_a_malformed_content_length_is_400(admin_unistra):
    response = client_for(admin_unistra).generic(
        "POST", "/api/v1/requests/", "{}", content_type="application/json", CONTENT_LENGTH="lots"
    )

    assert response.status_code == 400 and "Content-Length" in response.json()["detail"]


def test_the_schema_is_valid_openapi_3_and_covers_every_endpoint(db):
    schema = SchemaGenerator().get_schema(request=None, public=True)

    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    paths = set(schema["paths"])
    for path in (
        "/api/v1/instances/{slug}/rollout/",
        "/api/v1/instances/{slug}/backups/",
        "/api/v1/operations/{id}/",
        "/api/v1/requests/{id}/approve/",
        "/api/v1/registry/check/",
        "/api/v1/tokens/{id}/revoke/",
    ):
        assert path in paths
    assert schema["components"]["securitySchemes"]["personalToken"]["scheme"] == "bearer"


def test_the_schema_and_docs_are_served_with_local_assets(client, admin_unistra):
    client.force_login(admin_unistra)

    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    docs = client.get("/api/v1/docs/")

    assert schema.status_code == 200 and json.loads(schema.content)["info"]["title"] == "SaaS Portal API"
    assert docs.status_code == 200
    page = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")


def test_the_menu_links_the_docs_and_the_tokens(client, admin_unistra):
    client.force_login(admin_unistra)

    page = client.get("/").content.decode()

    assert 'href="/api/v1/docs/"' in page and 'href="/account/tokens/"' in page


# --- operations, rollout, backups ----------------------------------------------------------------------------


@pytest.fixture
def history(instance_unistra, instance_unicaen, versions):
    """An upgrade of each instance (the unistra one with a log and a traceback), workloads and backups."""
    now = timezone.now()
    log = [
        {"time": now.isoformat(), "level": "info", "message": "Applied 12 objects."},
        log_line(Message(STALE, {"time": "2026-12-01 10:00:00"}), "warning"),
    ]
    ours = Operation.objects.create(
        kind=OperationKind.UPGRADE,
        instance=instance_unistra,
        target_version=versions["1.2.6"],
        status=OperationStatus.FAILED,
        log=log,
        error="Rollout failed.",
        traceback="Traceback: secret internals",
        manifests="kind: Secret",
        finished_at=now,
    )
    theirs = Operation.objects.create(
        kind=OperationKind.DEPLOY, instance=instance_unicaen, status=OperationStatus.SUCCEEDED
    )
    RolloutSnapshot.objects.create(
        instance=instance_unistra,
        kind="Deployment",
        component="core",
        desired=2,
        ready=2,
        updated=2,
        available=2,
        state=RolloutState.DONE,
    )
    RolloutSnapshot.objects.create(
        instance=instance_unistra,
        kind="StatefulSet",
        component="database",
        desired=1,
        ready=0,
        state=RolloutState.PROGRESSING,
        message="Waiting for the volume.",
    )
    Backup.objects.create(
        instance=instance_unistra,
        job_name="tm-1",
        trigger=BackupTrigger.SCHEDULE,
        status=BackupStatus.SUCCEEDED,
        started_at=now - timezone.timedelta(minutes=3),
        finished_at=now,
    )
    Backup.objects.create(
        instance=instance_unicaen, job_name="tm-2", trigger=BackupTrigger.MANUAL, status=BackupStatus.FAILED
    )
    return ours, theirs


def test_operations_are_listed_per_instance_and_scoped(admin_unistra, maintainer, history):
    ours, theirs = history

    mine = client_for(admin_unistra).get("/api/v1/operations/").json()["results"]
    everyone = client_for(maintainer).get("/api/v1/operations/?instance=smile-unicaen").json()["results"]

    assert [item["id"] for item in mine] == [ours.pk]
    assert mine[0]["status"] == "failed" and mine[0]["target_version"] == "1.2.6" and "log" not in mine[0]
    assert [item["id"] for item in everyone] == [theirs.pk]
    assert client_for(admin_unistra).get(f"/api/v1/operations/{theirs.pk}/").status_code == 404


def test_an_operation_shows_its_log_in_the_caller_language_and_never_its_traceback(admin_unistra, history):
    ours, _theirs = history
    client = client_for(admin_unistra)

    body = client.get(f"/api/v1/operations/{ours.pk}/").json()
    french = client.get(f"/api/v1/operations/{ours.pk}/", HTTP_ACCEPT_LANGUAGE="fr").json()

    assert [line["message"] for line in body["log"]] == ["Applied 12 objects.", STALE % {"time": "2026-12-01 10:00:00"}]
    assert french["log"][1]["message"] == gettext_in("fr", STALE) % {"time": "2026-12-01 10:00:00"}
    assert french["log"][1]["message"] != body["log"][1]["message"]
    assert "traceback" not in body and "secret internals" not in json.dumps(body)
    assert "manifests" not in body


def test_the_rollout_gives_each_workload_and_the_current_operation(admin_unistra, instance_unistra, history):
    Operation.objects.create(kind=OperationKind.UPGRADE, instance=instance_unistra, status=OperationStatus.RUNNING)

    body = client_for(admin_unistra).get("/api/v1/instances/smile-unistra/rollout/").json()

    assert body["instance"] == "smile-unistra" and body["ready"] is False
    assert [(w["component"], w["ready"], w["desired"], w["state"]) for w in body["workloads"]] == [
        ("core", 2, 2, "done"),
        ("database", 0, 1, "progressing"),
    ]
    assert body["current_operation"]["status"] == "running"


def test_backups_are_listed_newest_first_with_their_duration(admin_unistra, history):
    body = client_for(admin_unistra).get("/api/v1/instances/smile-unistra/backups/").json()

    assert body["count"] == 1
    assert body["results"][0]["job_name"] == "tm-1" and body["results"][0]["duration_seconds"] == 180.0


@pytest.mark.parametrize("suffix", ["rollout/", "backups/"])
def test_another_organisation_s_rollout_and_backups_are_404(admin_unistra, history, suffix):
    response = client_for(admin_unistra).get(f"/api/v1/instances/smile-unicaen/{suffix}")

    assert response.status_code == 404


def test_the_operation_list_runs_a_constant_number_of_queries(
    maintainer, instance_unistra, history, django_assert_max_num_queries
):
    client = client_for(maintainer)
    with django_assert_max_num_queries(10) as few:
        client.get("/api/v1/operations/")
    Operation.objects.bulk_create(
        Operation(kind=OperationKind.BACKUP, instance=instance_unistra, status=OperationStatus.SUCCEEDED)
        for _ in range(30)
    )
    with django_assert_max_num_queries(10) as many:
        response = client.get("/api/v1/operations/")
    assert response.json()["count"] == 32
    assert len(few.captured_queries) == len(many.captured_queries)
