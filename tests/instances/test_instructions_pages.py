"""The instruction pages: who may import, the dry run then the real import, form errors, export, git sources."""

import datetime
import html
import zoneinfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEvent
from instances.instructions.jobs import poll_source
from instances.models import ChangeRequest, InstructionSource
from tests.engine_fixtures import run_worker
from tests.instances.test_instructions_sources import Repository

pytestmark = pytest.mark.django_db

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
IMPORT = reverse("instances:instruction_import")
SOURCES = reverse("instances:instruction_source_list")
SECRET = "glpat-page-s3cr3t"


@pytest.fixture(autouse=True)
def _paris(settings):
    settings.TIME_ZONE = "Europe/Paris"


def at(days=3) -> str:
    day = timezone.localdate(timezone.now(), PARIS) + datetime.timedelta(days=days)
    return f"{day:%d/%m/%Y}-14:30"


def page(response) -> str:
    return html.unescape(response.content.decode())


# --- import -----------------------------------------------------------------------------------------------------


def test_anonymous_users_are_sent_to_log_in(client):
    response = client.get(IMPORT)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_viewer_reads_the_page_but_cannot_import(client, viewer_unistra, instance_unistra, versions):
    client.force_login(viewer_unistra)
    response = client.get(IMPORT)
    assert response.status_code == 200 and not response.context["can_import"]
    assert "Read the file" not in page(response) and "Export the open scheduled requests" in page(response)
    refused = client.post(IMPORT, {"text": f"U|smile-unistra|1.2.6|{at()}"})
    assert refused.status_code == 403
    assert ChangeRequest.objects.count() == 0


def test_a_functional_admin_previews_then_imports(client, admin_unistra, instance_unistra, versions):
    client.force_login(admin_unistra)
    form = client.get(IMPORT)
    assert form.context["form"]["dry_run"].value() is True  # a preview first, by default
    text = f"U|smile-unistra|1.2.6|{at()}\nU|ghost|1.2.6|{at()}\n"
    preview = client.post(IMPORT, {"text": text, "dry_run": "on"})
    assert preview.status_code == 200
    assert preview.context["report"].dry_run and ChangeRequest.objects.count() == 0
    content = page(preview)
    assert "Dry run: nothing was saved" in content and "would be created" in content
    assert "There is no instance named ghost." in content and "Import these lines" in content
    assert preview.context["content"] == text
    imported = client.post(IMPORT, {"text": preview.context["content"]})
    request = ChangeRequest.objects.get()
    assert imported.context["report"].created == 1
    assert f'href="/requests/{request.pk}/"' in page(imported)
    assert "1 created, 0 unchanged, 0 cancelled, 1 in error." in page(imported)


def test_an_uploaded_windows_file_is_read(client, admin_unistra, instance_unistra, versions):
    client.force_login(admin_unistra)
    upload = SimpleUploadedFile("plan.txt", f"\ufeff# plan\r\nu | smile-unistra | 1.2.6 | {at()}\r\n".encode())
    response = client.post(IMPORT, {"file": upload})
    assert response.context["report"].created == 1
    assert ChangeRequest.objects.get().instruction_line == 2


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, "Upload a file or paste the instructions."),
        ({"text": "   "}, "Upload a file or paste the instructions."),
        ({"text": "# x", "file": SimpleUploadedFile("a.txt", b"# y")}, "Upload a file or paste text, not both."),
        ({"file": SimpleUploadedFile("a.txt", b"U|caf\xe9|1|x")}, "The file is not UTF-8 text"),
        ({"file": SimpleUploadedFile("a.txt", b"#" * 201)}, "The file is too big: 201 bytes, at most 200"),
        ({"text": "#" * 201}, "The file is too big: 201 bytes"),
        ({"text": "# c\n" * 6}, "The file has 6 lines, at most 5 are accepted."),
    ],
)
def test_form_errors_never_a_500(client, admin_unistra, settings, data, expected):
    settings.PORTAL_INSTRUCTIONS_MAX_BYTES, settings.PORTAL_INSTRUCTIONS_MAX_LINES = 200, 5
    client.force_login(admin_unistra)
    response = client.post(IMPORT, data)
    assert response.status_code == 200
    assert expected in page(response)
    assert "report" not in response.context


def test_the_export_downloads_what_the_user_sees(client, admin_unistra, instance_unistra, versions):
    client.force_login(admin_unistra)
    client.post(IMPORT, {"text": f"U|smile-unistra|1.2.6|{at()}"})
    response = client.get(reverse("instances:instruction_export"))
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="instructions.txt"'
    assert response.content.decode().splitlines()[-1] == f"U|smile-unistra|1.2.6|{at()}"


def test_the_request_page_shows_where_an_instruction_came_from(client, maintainer, source, repo, instance_unistra):
    sha = repo.commit(f"# plan\nU|smile-unistra|1.2.6|{at()}\n")
    poll_source(source.pk)
    request = ChangeRequest.objects.get()
    client.force_login(maintainer)
    content = page(client.get(request.get_absolute_url()))
    assert "Instructions file" in content and "line 2" in content
    assert f'href="{source.get_absolute_url()}">hosting</a>' in content
    assert f'<code title="{sha}">{sha[:10]}</code>' in content


def test_navigation_links(client, admin_unistra, maintainer):
    client.force_login(admin_unistra)
    content = page(client.get(reverse("home")))
    assert f'href="{IMPORT}"' in content and f'href="{SOURCES}"' not in content
    client.force_login(maintainer)
    content = page(client.get(reverse("home")))
    assert f'href="{IMPORT}"' in content and f'href="{SOURCES}"' in content


# --- git sources ------------------------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path, settings):
    settings.PORTAL_INSTRUCTIONS_GIT_DIR = tmp_path / "scratch"
    return Repository(tmp_path)


@pytest.fixture
def source(repo, smile):
    return InstructionSource.objects.create(name="hosting", url=str(repo.bare), username="deploy", secret=SECRET)


@pytest.mark.parametrize("user", ["admin_unistra", "viewer_unistra"])
def test_sources_are_for_maintainers_only(client, request, user, source):
    client.force_login(request.getfixturevalue(user))
    for url in (
        SOURCES,
        reverse("instances:instruction_source_create"),
        source.get_absolute_url(),
        reverse("instances:instruction_source_update", args=[source.pk]),
    ):
        assert client.get(url).status_code == 403
    assert client.post(reverse("instances:instruction_source_import", args=[source.pk])).status_code == 403


def test_the_source_list_takes_the_same_queries_for_many_sources(client, maintainer, django_assert_max_num_queries):
    client.force_login(maintainer)

    def count() -> int:
        client.get(SOURCES)
        with django_assert_max_num_queries(10) as captured:
            response = client.get(SOURCES)
        assert response.status_code == 200
        return len(captured)

    report = {"created": 2, "unchanged": 1, "cancelled": 0, "errors": 3, "lines": [{"line": 1}] * 500}
    InstructionSource.objects.create(name="s0", url="/srv/s0.git", last_report=report, last_imported_at=timezone.now())
    few = count()
    for index in range(1, 15):
        InstructionSource.objects.create(name=f"s{index}", url=f"/srv/s{index}.git", last_report=report)
    assert count() == few
    assert "2 created, 1 unchanged, 0 cancelled, 3 in error" in page(client.get(SOURCES))


def test_a_maintainer_adds_a_source_whose_secret_is_write_only(client, maintainer, smile):
    client.force_login(maintainer)
    data = {
        "name": "hosting",
        "url": "https://git.example.org/hosting/instructions.git",
        "branch": "main",
        "path": "plans/instructions.txt",
        "poll_interval": 300,
        "enabled": "on",
        "username": "deploy",
        "secret": SECRET,
    }
    response = client.post(reverse("instances:instruction_source_create"), data)
    source = InstructionSource.objects.get()
    assert response.status_code == 302 and response["Location"] == source.get_absolute_url()
    assert source.secret == SECRET
    event = AuditEvent.objects.get(action="instruction_source.created")
    assert event.after["secret"] == "changed" and SECRET not in str(event.after)
    edit = client.get(reverse("instances:instruction_source_update", args=[source.pk]))
    assert SECRET not in page(edit) and SECRET not in page(client.get(source.get_absolute_url()))
    client.post(
        reverse("instances:instruction_source_update", args=[source.pk]), {**data, "secret": "", "branch": "prod"}
    )
    source.refresh_from_db()
    assert (source.branch, source.secret) == ("prod", SECRET)  # an empty field keeps the stored secret
    updated = AuditEvent.objects.get(action="instruction_source.updated")
    assert (updated.before["branch"], updated.after["branch"]) == ("main", "prod") and "secret" not in updated.after
    client.post(
        reverse("instances:instruction_source_update", args=[source.pk]), {**data, "secret": "", "clear_secret": "on"}
    )
    source.refresh_from_db()
    assert source.secret == ""


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({"url": "https://deploy:tok@git.example.org/x.git"}, "url", "Put the user name and the password or token"),
        ({"url": "ext::sh -c id"}, "url", "This is not a git repository URL."),
        ({"url": "http://git.example.org/x.git"}, "url", "The http transport is not allowed here"),
        ({"branch": "--upload-pack=x"}, "branch", "This is not a valid branch name."),
        ({"path": "../etc/passwd"}, "path", "Give the path of a file inside the repository."),
        ({"poll_interval": 5}, "poll_interval", "Ensure this value is greater than or equal to 60."),
    ],
)
def test_source_form_errors(client, maintainer, change, field, expected):
    client.force_login(maintainer)
    data = {
        "name": "x",
        "url": "https://git.example.org/x.git",
        "branch": "main",
        "path": "i.txt",
        "poll_interval": 300,
    }
    response = client.post(reverse("instances:instruction_source_create"), {**data, **change})
    assert response.status_code == 200
    assert any(expected in error for error in response.context["form"].errors[field])
    assert not InstructionSource.objects.exists()


def test_import_now_runs_in_the_background_and_the_page_shows_the_report(
    client, maintainer, source, repo, instance_unistra, queues, django_capture_on_commit_callbacks
):
    sha = repo.commit(f"U|smile-unistra|1.2.6|{at()}\nU|ghost|1.2.6|{at()}\n")
    client.force_login(maintainer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("instances:instruction_source_import", args=[source.pk]))
    assert response.status_code == 302
    assert ChangeRequest.objects.count() == 0  # queued, not run in the web request
    run_worker("sync")
    content = page(client.get(source.get_absolute_url()))
    assert sha in content and "There is no instance named ghost." in content
    assert ChangeRequest.objects.get().instruction_source == source
    InstructionSource.objects.filter(pk=source.pk).update(path="missing.txt")
    poll_source(source.pk, force=True)
    content = page(client.get(source.get_absolute_url()))
    assert "The last poll failed; nothing was imported." in content and "There is no file missing.txt" in content
    assert sha in content and "There is no instance named ghost." in content  # the last good report stays
    assert SECRET not in content


def test_database_query_of_the_source_page_reads_no_secret(client, maintainer, source):
    from django.test.utils import CaptureQueriesContext

    client.force_login(maintainer)
    with CaptureQueriesContext(connection) as queries:
        client.get(source.get_absolute_url())
        client.get(SOURCES)
    assert not any('"secret"' in query["sql"] for query in queries.captured_queries)


def test_the_admin_edits_sources_without_showing_the_secret(client, source):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", "root@example.org", "a-test-password-123")
    client.force_login(admin)
    assert client.get(reverse("admin:instances_instructionsource_add")).status_code == 200
    change = client.get(reverse("admin:instances_instructionsource_change", args=[source.pk]))
    assert change.status_code == 200 and SECRET not in page(change)
    assert client.get(reverse("admin:instances_instructionsource_changelist")).status_code == 200


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://git.example.org/other/repo.git", False),  # same host: the secret goes where it went
        ("https://attacker.example.net/hosting/instructions.git", True),
        ("ssh://git.example.org/hosting/instructions.git", True),  # another transport
        ("git@attacker.example.net:hosting/instructions.git", True),
    ],
)
def test_the_stored_secret_is_not_sent_to_a_new_address_without_being_typed_again(
    client, maintainer, smile, url, refused
):
    source = InstructionSource.objects.create(
        name="hosting", url="https://git.example.org/hosting/instructions.git", username="deploy", secret=SECRET
    )
    client.force_login(maintainer)
    data = {
        "name": "hosting",
        "url": url,
        "branch": "main",
        "path": "instructions.txt",
        "poll_interval": 300,
        "enabled": "on",
        "username": "deploy",
        "secret": "",
    }

    response = client.post(reverse("instances:instruction_source_update", args=[source.pk]), data)

    source.refresh_from_db()
    if refused:
        assert response.status_code == 200 and "Enter the password or token again" in page(response)
        assert source.url == "https://git.example.org/hosting/instructions.git"
    else:
        assert response.status_code == 302 and (source.url, source.secret) == (url, SECRET)
    retyped = client.post(reverse("instances:instruction_source_update", args=[source.pk]), {**data, "secret": "new"})
    assert retyped.status_code == 302
