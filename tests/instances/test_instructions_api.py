"""The instruction endpoints of the API (text/plain, multipart, JSON; dry run; tenancy; export) and the command."""

import datetime
import json
import zoneinfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from core.models import ApiToken, AuditEvent
from instances import workflow
from instances.models import ChangeRequest
from tests.conftest import ctx

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.instances.instruction_urls")]

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
IMPORT, EXPORT = "/api/v1/instructions/import/", "/api/v1/instructions/export/"


@pytest.fixture(autouse=True)
def _paris(settings):
    settings.TIME_ZONE = "Europe/Paris"


def at(days=3) -> str:
    day = timezone.localdate(timezone.now(), PARIS) + datetime.timedelta(days=days)
    return f"{day:%d/%m/%Y}-14:30"


def client_for(user, read_only=False) -> APIClient:
    client = APIClient()
    _token, secret = ApiToken.objects.create(user=user, name="ci", read_only=read_only)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def post_text(client, text: str, query: str = ""):
    return client.post(IMPORT + query, data=text.encode(), content_type="text/plain")


def test_text_plain_import_answers_the_report(admin_unistra, instance_unistra, versions):
    response = post_text(client_for(admin_unistra), f"\ufeff# plan\r\nU|smile-unistra|1.2.6|{at()}\r\nX|a|1|{at()}\r\n")
    assert response.status_code == 200
    body = response.json()
    request = ChangeRequest.objects.get()
    assert {key: body[key] for key in ("dry_run", "created", "unchanged", "cancelled", "errors", "warnings")} == {
        "dry_run": False,
        "created": 1,
        "unchanged": 0,
        "cancelled": 0,
        "errors": 1,
        "warnings": 0,
    }
    assert body["lines"][0] == {
        "line": 2,
        "status": "created",
        "request": request.pk,
        "message": f"Request #{request.pk} filed (Submitted).",
        "warning": None,
        "instruction": f"U|smile-unistra|1.2.6|{at()}",
    }
    assert body["lines"][1]["line"] == 3 and body["lines"][1]["status"] == "error"
    assert request.requested_by == admin_unistra and request.instruction_line == 2


def test_dry_run_saves_nothing_and_answers_200(admin_unistra, instance_unistra, versions):
    counts = (ChangeRequest.objects.count(), AuditEvent.objects.count())
    response = post_text(client_for(admin_unistra), f"U|smile-unistra|1.2.6|{at()}", "?dry_run=true")
    assert response.status_code == 200
    assert response.json()["dry_run"] is True and response.json()["lines"][0]["status"] == "created"
    assert response.json()["lines"][0]["request"] is None
    assert (ChangeRequest.objects.count(), AuditEvent.objects.count()) == counts


def test_multipart_file_and_json_text(admin_unistra, instance_unistra, unistra, versions):
    client = client_for(admin_unistra)
    upload = SimpleUploadedFile("plan.txt", f"U|smile-unistra|1.2.6|{at()}\n".encode(), "text/plain")
    assert client.post(IMPORT, {"file": upload}, format="multipart").json()["created"] == 1
    response = client.post(IMPORT, {"text": f"C|unistra|1.2.5|{at()}"}, format="json")
    assert (response.status_code, response.json()["created"]) == (200, 1)
    assert ChangeRequest.objects.count() == 2


def test_another_organisations_instance_is_unknown(admin_unistra, instance_unicaen, versions):
    response = post_text(client_for(admin_unistra), f"U|smile-unicaen|1.2.6|{at()}\nU|ghost|1.2.6|{at()}")
    messages = [line["message"] for line in response.json()["lines"]]
    assert messages == ["There is no instance named smile-unicaen.", "There is no instance named ghost."]


@pytest.mark.parametrize(
    ("body", "query", "expected"),
    [
        ({"format": "json", "data": {"nothing": 1}}, "", "text"),
        ({"format": "json", "data": {"text": 12}}, "", "text"),
        ({"data": b"U|caf\xe9|1|01/01/2030-10:00", "content_type": "text/plain"}, "", "detail"),
        ({"data": b"# " + b"x" * 300, "content_type": "text/plain"}, "", "detail"),
        ({"format": "json", "data": {"text": "# " + "x" * 300}}, "", "detail"),
        ({"data": {"file": SimpleUploadedFile("f.txt", b"# " + b"x" * 300)}, "format": "multipart"}, "", "detail"),
        ({"data": b"# nothing", "content_type": "text/plain"}, "?dry_run=perhaps", "dry_run"),
        ({"data": b"# nothing", "content_type": "text/plain"}, "?application=moodle", "application"),
    ],
)
def test_bad_requests_are_400_never_500(admin_unistra, settings, body, query, expected):
    settings.PORTAL_INSTRUCTIONS_MAX_BYTES = 200
    response = client_for(admin_unistra).post(IMPORT + query, **body)
    assert response.status_code == 400, response.content
    assert expected in response.json()
    assert ChangeRequest.objects.count() == 0


def test_bytes_the_database_cannot_hold_are_line_errors_not_server_errors(admin_unistra, instance_unistra):
    client = client_for(admin_unistra)
    response = client.post(IMPORT + "?application=smi%00le", {"text": f"U|smile-unistra|1.2.6|{at()}"}, format="json")
    assert response.status_code == 400 and "application" in response.json()
    for text in (f"U|smile\x00-unistra|1.2.6|{at()}", f"U|smile-unistra|\ud800|{at()}", "\x00"):
        # Escaped by json.dumps as the wire carries it (\ud800 alone is valid JSON, not valid text).
        response = client.post(IMPORT, json.dumps({"text": text}), content_type="application/json")
        assert response.status_code == 200
        assert response.json()["lines"][0]["status"] == "error"
    assert post_text(client, f"U|smile\x00-unistra|1.2.6|{at()}").json()["errors"] == 1


def test_authentication_and_token_scope(admin_unistra):
    assert post_text(APIClient(), "# x").status_code == 401
    assert post_text(client_for(admin_unistra, read_only=True), "# x").status_code == 403
    assert APIClient().get(EXPORT).status_code == 401


def test_export_is_text_scoped_to_the_caller(
    admin_unistra, admin_unicaen, instance_unistra, instance_unicaen, versions
):
    when = datetime.datetime.combine(
        timezone.localdate(timezone.now(), PARIS) + datetime.timedelta(days=3), datetime.time(14, 30), tzinfo=PARIS
    )
    workflow.request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"], scheduled_for=when)
    workflow.request_delete(ctx(admin_unicaen), instance_unicaen, scheduled_for=when)
    client = client_for(admin_unistra)
    for accept in ("*/*", "text/plain"):
        response = client.get(EXPORT, HTTP_ACCEPT=accept)
        assert response.status_code == 200 and response["Content-Type"] == "text/plain; charset=utf-8"
        text = response.content.decode()
        assert text.splitlines()[-1] == f"U|smile-unistra|1.2.6|{at()}" and "unicaen" not in text
    assert post_text(client, text).json()["unchanged"] == 1  # the round trip
    refused = APIClient().get(EXPORT, HTTP_ACCEPT="text/plain")
    assert refused.status_code == 401 and b"Authentication credentials were not provided" in refused.content


@pytest.mark.urls("portal.urls")
def test_the_project_serves_them_and_the_schema_describes_them(admin_unistra):
    assert post_text(client_for(admin_unistra), "# nothing").status_code == 200
    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)
    operation = schema["paths"][IMPORT]["post"]
    assert set(operation["requestBody"]["content"]) == {"text/plain", "multipart/form-data", "application/json"}
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ImportReport")
    assert "lines" in schema["components"]["schemas"]["ImportReport"]["properties"]
    assert "text/plain" in schema["paths"][EXPORT]["get"]["responses"]["200"]["content"]


def test_the_command_prints_the_report_and_exits_1_on_errors(tmp_path, instance_unistra, versions, capsys):
    plan = tmp_path / "plan.txt"
    plan.write_text(f"U|smile-unistra|1.2.6|{at()}\nU|ghost|1.2.6|{at()}\n")
    with pytest.raises(SystemExit) as exited:
        call_command("import_instructions", str(plan), "--dry-run")
    assert exited.value.code == 1
    out = capsys.readouterr().out
    assert "line 1: created: A request would be filed." in out
    assert "line 2: error: There is no instance named ghost." in out
    assert "Dry run, nothing was saved: 1 would be created" in out
    assert ChangeRequest.objects.count() == 0
    plan.write_text(f"U|smile-unistra|1.2.6|{at()}\n")
    call_command("import_instructions", str(plan))
    request = ChangeRequest.objects.get()
    assert request.requested_by_label == f"system: instructions file {plan}"


def test_the_command_imports_as_a_user(tmp_path, admin_unistra, instance_unicaen, versions, capsys):
    plan = tmp_path / "plan.txt"
    plan.write_text(f"U|smile-unicaen|1.2.6|{at()}\n")
    with pytest.raises(SystemExit):
        call_command("import_instructions", str(plan), "--as", "admin-unistra")
    assert "There is no instance named smile-unicaen." in capsys.readouterr().out
