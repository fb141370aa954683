"""The REST API: authentication, tenancy, filing requests, reviewing them, errors as JSON, query counts."""

import datetime
import zoneinfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from core.api.exceptions import exception_handler
from core.errors import Conflict, InvalidTransition, NotAllowed
from core.models import ApiToken, AuditEvent
from instances.choices import InstanceStatus, RequestKind, RequestSource, RequestStatus
from instances.models import ApplicationVersion, ChangeRequest, Instance
from instances.workflow import request_backup, request_update
from tests.conftest import PASSWORD, ctx

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
CREATE = {"kind": "create", "organisation": "unistra", "application": "smile", "slug": "smile-x", "version": "1.2.6"}
UPDATE = {"kind": "update", "instance": "smile-unistra", "version": "1.2.6"}
LIST_ENDPOINTS = [
    "/api/v1/organisations/",
    "/api/v1/memberships/",
    "/api/v1/applications/",
    "/api/v1/instances/",
    "/api/v1/requests/",
    "/api/v1/audit/",
]


def token_client(user) -> APIClient:
    """A client that authenticates as ``user`` with a real token, as a CI pipeline would."""
    client = APIClient()
    # Marked as used just now, so that the once-a-minute "last used" write does not count in query counts.
    _token, secret = ApiToken.objects.create(user=user, name="tests", last_used_at=timezone.now())
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def as_user(db):
    return token_client


@pytest.fixture
def update_unistra(admin_unistra, instance_unistra, versions):
    """An upgrade of smile-unistra waiting for review, filed by its functional admin."""
    return request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"])


@pytest.fixture
def update_unicaen(admin_unicaen, instance_unicaen, versions):
    return request_update(ctx(admin_unicaen), instance_unicaen, version=versions["1.2.6"])


def future(days: int = 10) -> datetime.datetime:
    return (timezone.now() + datetime.timedelta(days=days)).replace(microsecond=0)


def slugs(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["slug"] for item in response.json()["results"]]


# --- authentication ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/v1/", *LIST_ENDPOINTS, "/api/v1/instances/smile-unistra/"])
def test_anonymous_is_refused_with_json(db, url):
    response = APIClient().get(url)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert "detail" in response.json()


def test_anonymous_cannot_file_a_request(instance_unistra, versions):
    response = APIClient().post(
        "/api/v1/requests/", {"kind": "update", "instance": "smile-unistra", "version": "1.2.6"}, format="json"
    )
    assert response.status_code == 401
    assert not ChangeRequest.objects.exists()


def test_bad_token_is_401(admin_unistra):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/v1/instances/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


def test_token_of_inactive_user_is_401(admin_unistra):
    client = token_client(admin_unistra)
    admin_unistra.is_active = False
    admin_unistra.save()
    assert client.get("/api/v1/instances/").status_code == 401


def test_token_authenticates_and_root_lists_every_endpoint(as_user, admin_unistra):
    response = as_user(admin_unistra).get("/api/v1/")
    assert response.status_code == 200
    body = response.json()
    assert {
        "organisations",
        "memberships",
        "applications",
        "instances",
        "requests",
        "operations",
        "audit",
        "tokens",
        "registry-check",
        "schema",
        "docs",
    } <= set(body)
    assert body["requests"] == "http://testserver/api/v1/requests/"


def test_session_authentication_works(client, admin_unistra, instance_unistra):
    assert client.login(username="admin-unistra", password=PASSWORD)
    assert slugs(client.get("/api/v1/instances/")) == ["smile-unistra"]


def test_session_post_needs_csrf_token(admin_unistra, instance_unistra, versions):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="admin-unistra", password=PASSWORD)
    response = client.post("/api/v1/requests/", {"kind": "backup", "instance": "smile-unistra"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not ChangeRequest.objects.exists()


# --- organisations, memberships, applications ----------------------------------------------------------------


def test_organisations_are_scoped(as_user, admin_unistra, unicaen, maintainer):
    assert slugs(as_user(admin_unistra).get("/api/v1/organisations/")) == ["unistra"]
    assert slugs(as_user(maintainer).get("/api/v1/organisations/")) == ["unicaen", "unistra"]


def test_organisation_detail_of_another_organisation_is_404(as_user, admin_unistra, unicaen):
    client = as_user(admin_unistra)
    assert client.get("/api/v1/organisations/unicaen/").status_code == 404
    response = client.get("/api/v1/organisations/unistra/")
    assert response.status_code == 200
    assert response.json()["name"] == "Université de Strasbourg"


def test_memberships_show_only_own_organisations(as_user, admin_unistra, viewer_unistra, admin_unicaen):
    response = as_user(admin_unistra).get("/api/v1/memberships/")
    assert response.status_code == 200
    users = sorted((m["user"], m["organisation"]["slug"], m["role"]) for m in response.json()["results"])
    assert users == [("admin-unistra", "unistra", "admin"), ("viewer-unistra", "unistra", "viewer")]


def test_application_lists_available_versions_newest_first(as_user, viewer_unistra, smile, versions):
    ApplicationVersion.objects.create(application=smile, version="1.2.10")
    ApplicationVersion.objects.create(application=smile, version="1.3.0-rc1", is_available=False)
    client = as_user(viewer_unistra)
    response = client.get("/api/v1/applications/smile/")
    assert response.status_code == 200
    assert response.json()["versions"] == ["1.2.10", "1.2.6", "1.2.5", "1.2.4"]
    assert "smile" in slugs(client.get("/api/v1/applications/"))
    assert client.get("/api/v1/applications/nope/").status_code == 404


# --- instances -----------------------------------------------------------------------------------------------


def test_instances_are_scoped_to_the_callers_organisations(
    as_user, admin_unistra, maintainer, instance_unistra, instance_unicaen
):
    assert slugs(as_user(admin_unistra).get("/api/v1/instances/")) == ["smile-unistra"]
    assert slugs(as_user(maintainer).get("/api/v1/instances/")) == ["smile-unicaen", "smile-unistra"]


def test_instance_detail(as_user, viewer_unistra, instance_unistra, instance_unicaen):
    client = as_user(viewer_unistra)
    assert client.get("/api/v1/instances/smile-unicaen/").status_code == 404
    response = client.get("/api/v1/instances/smile-unistra/")
    assert response.status_code == 200
    body = response.json()
    assert body["organisation"] == {"slug": "unistra", "name": "Université de Strasbourg"}
    assert body["application"] == "smile"
    assert body["current_version"] == "1.2.4"
    assert (body["status"], body["status_display"]) == ("running", "Running")
    assert body["url"] == "http://testserver/api/v1/instances/smile-unistra/"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("organisation=unicaen", ["smile-unicaen"]),
        ("application=smile", ["smile-unicaen", "smile-unistra"]),
        ("application=other", []),
        ("status=running", ["smile-unicaen", "smile-unistra"]),
        ("status=failed", []),
        ("version=1.2.5", ["smile-unicaen"]),
    ],
)
def test_instance_filters(as_user, maintainer, instance_unistra, instance_unicaen, query, expected):
    assert slugs(as_user(maintainer).get(f"/api/v1/instances/?{query}")) == expected


def test_instance_filter_on_an_invisible_organisation_is_empty(as_user, admin_unistra, instance_unicaen):
    assert slugs(as_user(admin_unistra).get("/api/v1/instances/?organisation=unicaen")) == []


@pytest.mark.parametrize(
    ("query", "field"), [("status=explode", "status"), ("organisation=uni%00stra", "organisation")]
)
def test_instance_filter_with_a_bad_value_is_400(as_user, maintainer, query, field):
    response = as_user(maintainer).get(f"/api/v1/instances/?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_instance_lookup_with_a_nul_byte_is_404(as_user, maintainer, instance_unistra):
    assert as_user(maintainer).get("/api/v1/instances/smile%00unistra/").status_code == 404


# --- reading requests ----------------------------------------------------------------------------------------


def test_requests_are_scoped(as_user, admin_unistra, maintainer, update_unistra, update_unicaen):
    def ids(client, query=""):
        response = client.get(f"/api/v1/requests/{query}")
        assert response.status_code == 200
        return [item["id"] for item in response.json()["results"]]

    assert ids(as_user(admin_unistra)) == [update_unistra.pk]
    maintainer_client = as_user(maintainer)
    assert ids(maintainer_client) == [update_unicaen.pk, update_unistra.pk]
    assert ids(maintainer_client, "?organisation=unicaen") == [update_unicaen.pk]
    assert ids(maintainer_client, "?instance=smile-unistra") == [update_unistra.pk]
    assert ids(maintainer_client, "?kind=backup") == []
    assert ids(maintainer_client, "?status=submitted&kind=update") == [update_unicaen.pk, update_unistra.pk]
    assert ids(maintainer_client, "?status=approved") == []
    assert as_user(maintainer).get("/api/v1/requests/?kind=explode").status_code == 400


def test_request_detail(as_user, admin_unistra, update_unistra, update_unicaen):
    client = as_user(admin_unistra)
    assert client.get(f"/api/v1/requests/{update_unicaen.pk}/").status_code == 404
    response = client.get(f"/api/v1/requests/{update_unistra.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["organisation"] == {"slug": "unistra", "name": "Université de Strasbourg"}
    assert (body["kind"], body["kind_display"]) == ("update", "Upgrade")
    assert (body["status"], body["status_display"]) == ("submitted", "Submitted")
    assert (body["instance"], body["target_version"], body["application"]) == ("smile-unistra", "1.2.6", "smile")
    assert body["requested_by"] == "admin-unistra"
    assert body["reviewer"] is None
    assert body["web_url"] == f"http://testserver/requests/{update_unistra.pk}/"


def test_request_dates_are_returned_in_utc(as_user, admin_unistra, instance_unistra, versions):
    when = future(20).astimezone(PARIS).replace(hour=12, minute=0, second=0)
    change = request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"], scheduled_for=when)
    body = as_user(admin_unistra).get(f"/api/v1/requests/{change.pk}/").json()
    assert body["scheduled_for"] == when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- filing requests -----------------------------------------------------------------------------------------


def test_file_a_create_request(as_user, admin_unistra, unistra, versions):
    when = future(30)
    response = as_user(admin_unistra).post(
        "/api/v1/requests/",
        {
            "kind": "create",
            "organisation": "unistra",
            "application": "smile",
            "slug": "smile-x",
            "version": "1.2.6",
            "scheduled_for": when.isoformat(),
            "comment": "from CI",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Location"] == body["url"]
    change = ChangeRequest.objects.get(pk=body["id"])
    assert (change.kind, change.source, change.status) == (RequestKind.CREATE, RequestSource.API, "submitted")
    assert (change.proposed_slug, change.target_version.version, change.organisation) == ("smile-x", "1.2.6", unistra)
    assert change.scheduled_for == when
    assert change.requested_by == admin_unistra
    assert body["target_name"] == "smile-x"
    assert body["source"] == "api"
    event = AuditEvent.objects.get(action="request.submitted", target_id=str(change.pk))
    assert event.actor_label == "admin-unistra"
    assert event.organisation_id == unistra.pk


@pytest.mark.parametrize(
    ("payload", "kind", "version"),
    [
        ({"kind": "update", "version": "1.2.6"}, RequestKind.UPDATE, "1.2.6"),
        ({"kind": "delete"}, RequestKind.DELETE, None),
        ({"kind": "backup"}, RequestKind.BACKUP, None),
    ],
)
def test_file_a_request_on_an_instance(as_user, admin_unistra, instance_unistra, payload, kind, version):
    response = as_user(admin_unistra).post("/api/v1/requests/", {**payload, "instance": "smile-unistra"}, format="json")
    assert response.status_code == 201, response.content
    change = ChangeRequest.objects.get(pk=response.json()["id"])
    assert (change.kind, change.instance, change.source) == (kind, instance_unistra, RequestSource.API)
    assert (change.target_version.version if change.target_version else None) == version
    assert response.json()["instance"] == "smile-unistra"
    assert AuditEvent.objects.filter(action="request.submitted", target_id=str(change.pk)).exists()


def test_naive_schedule_is_read_in_the_portal_time_zone(settings, as_user, admin_unistra, instance_unistra, versions):
    settings.TIME_ZONE = "Asia/Tokyo"
    day = future(15).date()
    response = as_user(admin_unistra).post(
        "/api/v1/requests/",
        {"kind": "update", "instance": "smile-unistra", "version": "1.2.6", "scheduled_for": f"{day}T12:00:00"},
        format="json",
    )
    assert response.status_code == 201, response.content
    expected = datetime.datetime.combine(day, datetime.time(12), tzinfo=zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert ChangeRequest.objects.get().scheduled_for == expected
    assert response.json()["scheduled_for"] == f"{day}T03:00:00Z"


@pytest.mark.parametrize("wall_clock", ["2030-03-31T02:30:00", "2030-10-27T02:30:00"])
def test_naive_schedule_skipped_or_repeated_by_a_clock_change_is_400(
    settings, as_user, admin_unistra, instance_unistra, versions, wall_clock
):
    settings.TIME_ZONE = "Europe/Paris"
    response = as_user(admin_unistra).post("/api/v1/requests/", {**UPDATE, "scheduled_for": wall_clock}, format="json")
    assert response.status_code == 400
    assert response.json() == {"scheduled_for": ['Invalid datetime for the timezone "Europe/Paris".']}


def test_schedule_with_an_offset_is_kept(as_user, admin_unistra, instance_unistra, versions):
    day = future(15).date()
    response = as_user(admin_unistra).post(
        "/api/v1/requests/",
        {"kind": "delete", "instance": "smile-unistra", "scheduled_for": f"{day}T12:00:00-05:00"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["scheduled_for"] == f"{day}T17:00:00Z"


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"kind"}),
        ({"kind": "explode"}, {"kind"}),
        ({"kind": ["create"]}, {"kind"}),
        ({"kind": "create"}, {"organisation", "application", "slug", "version"}),
        ({"kind": "update"}, {"instance", "version"}),
        ({"kind": "delete", "instance": None}, {"instance"}),
        ({**CREATE, "version": 123}, {"version"}),
        ({**CREATE, "slug": 42}, {"slug"}),
        ({**CREATE, "slug": ""}, {"slug"}),
        ({**CREATE, "slug": "Bad_Name"}, {"slug"}),
        ({**CREATE, "slug": "x" * 41}, {"slug"}),
        ({**CREATE, "slug": "smile-unistra"}, {"slug"}),
        ({**CREATE, "organisation": {"slug": "unistra"}}, {"organisation"}),
        ({**CREATE, "application": "nope"}, {"application"}),
        ({**CREATE, "version": "9.9.9"}, {"version"}),
        ({**CREATE, "version": "1.2.3-old"}, {"version"}),
        ({**CREATE, "instance": "smile-unistra"}, {"instance"}),
        ({**CREATE, "comment": 5}, {"comment"}),
        ({**CREATE, "comment": "x" * 2001}, {"comment"}),
        ({**UPDATE, "instance": []}, {"instance"}),
        ({**UPDATE, "version": "1.2.4"}, {"version"}),
        ({**UPDATE, "scheduled_for": "tomorrow"}, {"scheduled_for"}),
        ({**UPDATE, "scheduled_for": 1767225600}, {"scheduled_for"}),
        ({**UPDATE, "scheduled_for": "2020-01-01T12:00:00+01:00"}, {"scheduled_for"}),
        ({**UPDATE, "scheduled_for": "2099-01-01T12:00:00+01:00"}, {"scheduled_for"}),
        ({**UPDATE, "instance": "smile\x00unistra"}, {"instance"}),
        ({**CREATE, "comment": "\x00"}, {"comment"}),
        ({**UPDATE, "scheduled_for": "9999-12-31T23:59:59-12:00"}, {"scheduled_for"}),
        ({"kind": "delete", "instance": "smile-unistra", "version": "1.2.6"}, {"version"}),
        ({"kind": "backup", "instance": "smile-unistra", "scheduled_for": "2030-01-01T12:00:00Z"}, {"scheduled_for"}),
        ({"kind": "backup", "instance": "smile-unistra", "slug": "other"}, {"slug"}),
    ],
)
def test_invalid_input_is_400_naming_the_field(settings, as_user, admin_unistra, instance_unistra, payload, fields):
    settings.TIME_ZONE = "Europe/Paris"
    ApplicationVersion.objects.create(application=instance_unistra.application, version="1.2.3-old", is_available=False)
    response = as_user(admin_unistra).post("/api/v1/requests/", payload, format="json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == fields
    assert all(isinstance(messages, list) and messages for messages in response.json().values())
    assert not ChangeRequest.objects.exists()


@pytest.mark.parametrize("body", ["{not json", "[]", '"create"', "null", "42"])
def test_junk_body_is_400(as_user, admin_unistra, body):
    response = as_user(admin_unistra).post("/api/v1/requests/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()
    assert not ChangeRequest.objects.exists()


def test_form_encoded_body_is_accepted(as_user, admin_unistra, instance_unistra):
    response = as_user(admin_unistra).post("/api/v1/requests/", {"kind": "backup", "instance": "smile-unistra"})
    assert response.status_code == 201
    assert ChangeRequest.objects.get().kind == RequestKind.BACKUP


def test_invisible_and_missing_references_read_the_same(as_user, admin_unicaen, instance_unistra, versions):
    """Another organisation's instance or organisation is "not found", worded exactly as a missing one."""
    client = as_user(admin_unicaen)
    hidden = client.post("/api/v1/requests/", {"kind": "backup", "instance": "smile-unistra"}, format="json")
    missing = client.post("/api/v1/requests/", {"kind": "backup", "instance": "no-such"}, format="json")
    assert hidden.status_code == missing.status_code == 400
    assert hidden.json() == missing.json() == {"instance": ["Instance not found."]}
    hidden = client.post("/api/v1/requests/", {**CREATE, "organisation": "unistra"}, format="json")
    missing = client.post("/api/v1/requests/", {**CREATE, "organisation": "no-such"}, format="json")
    assert hidden.status_code == missing.status_code == 400
    assert hidden.json() == missing.json() == {"organisation": ["Organisation not found."]}
    assert not ChangeRequest.objects.exists()


def test_viewer_cannot_file_a_request(as_user, viewer_unistra, instance_unistra, versions):
    client = as_user(viewer_unistra)
    response = client.post("/api/v1/requests/", UPDATE, format="json")
    assert response.status_code == 403
    assert "functional admins" in response.json()["detail"]
    response = client.post("/api/v1/requests/", CREATE, format="json")
    assert response.status_code == 403
    assert not ChangeRequest.objects.exists()


def test_maintainer_files_for_any_organisation(as_user, maintainer, instance_unicaen):
    response = as_user(maintainer).post(
        "/api/v1/requests/", {"kind": "delete", "instance": "smile-unicaen"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["organisation"]["slug"] == "unicaen"


def test_conflicting_open_request_is_409_naming_it(as_user, admin_unistra, update_unistra):
    response = as_user(admin_unistra).post(
        "/api/v1/requests/", {"kind": "delete", "instance": "smile-unistra"}, format="json"
    )
    assert response.status_code == 409
    assert response["Content-Type"] == "application/json"
    detail = response.json()["detail"]
    assert detail.startswith(f"Request #{update_unistra.pk} (Upgrade, Submitted) is already open")
    assert ChangeRequest.objects.count() == 1


def test_second_backup_is_409(as_user, admin_unistra, instance_unistra, settings):
    settings.PORTAL_BACKUP_NEEDS_APPROVAL = True
    request_backup(ctx(admin_unistra), instance_unistra)
    response = as_user(admin_unistra).post(
        "/api/v1/requests/", {"kind": "backup", "instance": "smile-unistra"}, format="json"
    )
    assert response.status_code == 409
    assert "already pending" in response.json()["detail"]


def test_request_on_a_deleted_instance_is_409(as_user, admin_unistra, instance_unistra):
    Instance.objects.filter(pk=instance_unistra.pk).update(status=InstanceStatus.DELETED)
    response = as_user(admin_unistra).post("/api/v1/requests/", UPDATE, format="json")
    assert response.status_code == 409
    assert "deleted" in response.json()["detail"]


def test_requests_endpoint_does_not_allow_put_or_delete(as_user, admin_unistra, update_unistra):
    client = as_user(admin_unistra)
    assert client.put(f"/api/v1/requests/{update_unistra.pk}/", UPDATE, format="json").status_code == 405
    assert client.delete(f"/api/v1/requests/{update_unistra.pk}/").status_code == 405
    assert ChangeRequest.objects.get().status == RequestStatus.SUBMITTED


# --- approve, reject, cancel ---------------------------------------------------------------------------------


def test_maintainer_approves(as_user, maintainer, update_unistra):
    response = as_user(maintainer).post(
        f"/api/v1/requests/{update_unistra.pk}/approve/", {"reason": "ok"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["reviewer"]) == ("approved", "maintainer")
    update_unistra.refresh_from_db()
    assert (update_unistra.status, update_unistra.reviewer) == (RequestStatus.APPROVED, maintainer)
    event = AuditEvent.objects.get(action="request.approved", target_id=str(update_unistra.pk))
    assert (event.actor_label, event.reason) == ("maintainer", "ok")


def test_approving_a_request_for_later_schedules_it(as_user, admin_unistra, maintainer, instance_unistra, versions):
    change = request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"], scheduled_for=future(5))
    response = as_user(maintainer).post(f"/api/v1/requests/{change.pk}/approve/", format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "scheduled"


def test_functional_admin_cannot_approve(as_user, admin_unistra, update_unistra):
    response = as_user(admin_unistra).post(f"/api/v1/requests/{update_unistra.pk}/approve/", format="json")
    assert response.status_code == 403
    assert "maintainers" in response.json()["detail"]
    update_unistra.refresh_from_db()
    assert update_unistra.status == RequestStatus.SUBMITTED


def test_maintainer_cannot_approve_own_request(as_user, maintainer, instance_unistra, versions):
    client = as_user(maintainer)
    filed = client.post("/api/v1/requests/", UPDATE, format="json")
    assert filed.status_code == 201
    response = client.post(f"/api/v1/requests/{filed.json()['id']}/approve/", format="json")
    assert response.status_code == 403
    assert "own request" in response.json()["detail"]
    assert ChangeRequest.objects.get().status == RequestStatus.SUBMITTED


@pytest.mark.parametrize("verb", ["approve", "reject", "cancel"])
def test_actions_on_another_organisations_request_are_404(as_user, admin_unistra, update_unicaen, verb):
    response = as_user(admin_unistra).post(
        f"/api/v1/requests/{update_unicaen.pk}/{verb}/", {"reason": "x"}, format="json"
    )
    assert response.status_code == 404
    update_unicaen.refresh_from_db()
    assert update_unicaen.status == RequestStatus.SUBMITTED


@pytest.mark.parametrize("pk", ["999999", "abc", "99999999999999999999999"])
def test_a_missing_request_is_a_json_404(as_user, maintainer, pk):
    client = as_user(maintainer)
    for response in (
        client.get(f"/api/v1/requests/{pk}/"),
        client.post(f"/api/v1/requests/{pk}/approve/", format="json"),
    ):
        assert response.status_code == 404
        assert set(response.json()) == {"detail"}


def test_second_approval_is_409(as_user, maintainer, maintainer2, update_unistra):
    """Two maintainers press "approve" on the same page: the second one is told it is too late."""
    first = as_user(maintainer).post(f"/api/v1/requests/{update_unistra.pk}/approve/", format="json")
    second = as_user(maintainer2).post(f"/api/v1/requests/{update_unistra.pk}/approve/", format="json")
    assert first.status_code == 200
    assert second.status_code == 409
    assert second.json() == {
        "detail": f"Request #{update_unistra.pk} is Approved and cannot become Approved.",
        "status": "approved",
    }
    assert AuditEvent.objects.filter(action="request.approved").count() == 1
    update_unistra.refresh_from_db()
    assert update_unistra.reviewer == maintainer


def test_approving_a_rejected_request_is_409(as_user, maintainer, maintainer2, update_unistra):
    update_unistra.reject(ctx(maintainer2), "no")
    response = as_user(maintainer).post(f"/api/v1/requests/{update_unistra.pk}/approve/", format="json")
    assert response.status_code == 409
    assert response.json()["status"] == "rejected", "the client is told the state the request is in"
    update_unistra.refresh_from_db()
    assert update_unistra.status == RequestStatus.REJECTED


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": 123}, {"reason": None}])
def test_reject_needs_a_reason(as_user, maintainer, update_unistra, body):
    response = as_user(maintainer).post(f"/api/v1/requests/{update_unistra.pk}/reject/", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"reason"}
    update_unistra.refresh_from_db()
    assert update_unistra.status == RequestStatus.SUBMITTED


def test_maintainer_rejects_with_a_reason(as_user, maintainer, update_unistra):
    response = as_user(maintainer).post(
        f"/api/v1/requests/{update_unistra.pk}/reject/", {"reason": "Not during exams"}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["reason"]) == ("rejected", "Not during exams")
    assert AuditEvent.objects.filter(action="request.rejected", reason="Not during exams").exists()


def test_functional_admin_cannot_reject(as_user, admin_unistra, update_unistra):
    response = as_user(admin_unistra).post(
        f"/api/v1/requests/{update_unistra.pk}/reject/", {"reason": "x"}, format="json"
    )
    assert response.status_code == 403
    update_unistra.refresh_from_db()
    assert update_unistra.status == RequestStatus.SUBMITTED


def test_requester_cancels(as_user, admin_unistra, update_unistra):
    response = as_user(admin_unistra).post(f"/api/v1/requests/{update_unistra.pk}/cancel/", {"reason": "oops"})
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert AuditEvent.objects.filter(action="request.cancelled", target_id=str(update_unistra.pk)).exists()


def test_other_member_cannot_cancel(as_user, viewer_unistra, update_unistra):
    response = as_user(viewer_unistra).post(f"/api/v1/requests/{update_unistra.pk}/cancel/", format="json")
    assert response.status_code == 403
    update_unistra.refresh_from_db()
    assert update_unistra.status == RequestStatus.SUBMITTED


def test_cancelling_a_finished_request_is_409(as_user, admin_unistra, update_unistra):
    update_unistra.cancel(ctx(admin_unistra))
    response = as_user(admin_unistra).post(f"/api/v1/requests/{update_unistra.pk}/cancel/", format="json")
    assert response.status_code == 409
    assert "Cancelled" in response.json()["detail"]


def test_actions_refuse_get(as_user, maintainer, update_unistra):
    assert as_user(maintainer).get(f"/api/v1/requests/{update_unistra.pk}/approve/").status_code == 405
    update_unistra.refresh_from_db()
    assert update_unistra.status == RequestStatus.SUBMITTED


# --- audit ---------------------------------------------------------------------------------------------------


def test_audit_is_scoped_and_filterable(as_user, admin_unistra, maintainer, update_unistra, update_unicaen):
    client = as_user(admin_unistra)
    response = client.get("/api/v1/audit/")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [e["target_id"] for e in results] == [str(update_unistra.pk)]
    assert results[0]["organisation"]["slug"] == "unistra"
    assert "ip_address" not in results[0]
    unicaen_event = AuditEvent.objects.get(target_id=str(update_unicaen.pk))
    assert client.get(f"/api/v1/audit/{unicaen_event.pk}/").status_code == 404

    maintainer_client = as_user(maintainer)
    for query, count in [
        ("", 2),
        ("?organisation=unicaen", 1),
        (f"?target_type=instances.changerequest&target_id={update_unicaen.pk}", 1),
        ("?action=request.submitted", 2),
        ("?action=request.approved", 0),
    ]:
        assert maintainer_client.get(f"/api/v1/audit/{query}").json()["count"] == count, query
    detail = maintainer_client.get(f"/api/v1/audit/{unicaen_event.pk}/").json()
    assert detail["ip_address"] == "127.0.0.1"


def test_audit_is_read_only(as_user, maintainer, update_unistra):
    event = AuditEvent.objects.get()
    client = as_user(maintainer)
    assert client.post("/api/v1/audit/", {"action": "x"}, format="json").status_code == 405
    assert client.delete(f"/api/v1/audit/{event.pk}/").status_code == 405
    assert AuditEvent.objects.filter(pk=event.pk, action="request.submitted").exists()


# --- errors are JSON -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status", "data"),
    [
        (Conflict("busy"), 409, {"detail": "busy"}),
        (InvalidTransition(), 409, {"detail": str(InvalidTransition.default_message)}),
        (InvalidTransition("say why", field="reason"), 400, {"reason": ["say why"]}),
        (NotAllowed(), 403, {"detail": "You are not allowed to do this."}),
        (ValidationError({"slug": "taken"}), 400, {"slug": ["taken"]}),
        (ValidationError("bad"), 400, {"non_field_errors": ["bad"]}),
        (ValidationError({"__all__": ["bad together"]}), 400, {"non_field_errors": ["bad together"]}),
    ],
)
def test_exception_handler_turns_domain_errors_into_json(exc, status, data):
    response = exception_handler(exc, {})
    assert (response.status_code, response.data) == (status, data)


def test_domain_error_response_is_json_even_for_a_browser(as_user, admin_unistra, update_unistra):
    response = as_user(admin_unistra).post(
        "/api/v1/requests/",
        {"kind": "delete", "instance": "smile-unistra"},
        format="json",
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 409
    assert response["Content-Type"] == "application/json"
    assert "<html" not in response.content.decode()


# --- query counts --------------------------------------------------------------------------------------------


def bulk_instances(count, organisation, application, version):
    Instance.objects.bulk_create(
        Instance(
            organisation=organisation,
            application=application,
            slug=f"bulk-{i}",
            hostname=f"bulk-{i}.apps.example.org",
            current_version=version,
            status=InstanceStatus.RUNNING,
        )
        for i in range(count)
    )


def bulk_requests(count, instance, user, reviewer):
    ChangeRequest.objects.bulk_create(
        ChangeRequest(
            kind=RequestKind.BACKUP,
            organisation=instance.organisation,
            application=instance.application,
            instance=instance,
            status=RequestStatus.SUCCEEDED,
            requested_by=user,
            requested_by_label=user.username,
            reviewer=reviewer,
        )
        for _ in range(count)
    )


def count_queries(client, url, django_assert_max_num_queries) -> tuple[int, int]:
    with django_assert_max_num_queries(10) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries), len(response.json()["results"])


def test_instance_list_queries_do_not_grow_with_rows(
    as_user, admin_unistra, unistra, smile, versions, django_assert_max_num_queries
):
    client = as_user(admin_unistra)
    bulk_instances(5, unistra, smile, versions["1.2.4"])
    few = count_queries(client, "/api/v1/instances/?limit=500", django_assert_max_num_queries)
    Instance.objects.all().delete()
    bulk_instances(100, unistra, smile, versions["1.2.5"])
    many = count_queries(client, "/api/v1/instances/?limit=500", django_assert_max_num_queries)
    assert (few[1], many[1]) == (5, 100)
    assert few[0] == many[0]


def test_request_list_queries_do_not_grow_with_rows(
    as_user, admin_unistra, maintainer, instance_unistra, django_assert_max_num_queries
):
    client = as_user(admin_unistra)
    bulk_requests(5, instance_unistra, admin_unistra, maintainer)
    few = count_queries(client, "/api/v1/requests/?limit=500", django_assert_max_num_queries)
    bulk_requests(95, instance_unistra, admin_unistra, maintainer)
    many = count_queries(client, "/api/v1/requests/?limit=500", django_assert_max_num_queries)
    assert (few[1], many[1]) == (5, 100)
    assert few[0] == many[0]


def test_audit_and_application_list_queries_do_not_grow_with_rows(
    as_user, maintainer, admin_unistra, instance_unistra, smile, django_assert_max_num_queries
):
    client = as_user(maintainer)
    request_backup(ctx(admin_unistra), instance_unistra).cancel(ctx(admin_unistra))
    few_audit = count_queries(client, "/api/v1/audit/?limit=500", django_assert_max_num_queries)
    few_apps = count_queries(client, "/api/v1/applications/?limit=500", django_assert_max_num_queries)
    for i in range(5):
        request_backup(ctx(admin_unistra), instance_unistra).cancel(ctx(admin_unistra))
        ApplicationVersion.objects.create(application=smile, version=f"2.0.{i}")
    many_audit = count_queries(client, "/api/v1/audit/?limit=500", django_assert_max_num_queries)
    many_apps = count_queries(client, "/api/v1/applications/?limit=500", django_assert_max_num_queries)
    assert many_audit[1] > few_audit[1]
    assert (few_audit[0], few_apps[0]) == (many_audit[0], many_apps[0])
