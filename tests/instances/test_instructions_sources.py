"""Git sources of instruction files, against real local repositories and the real `git` command."""

import base64
import datetime
import http.server
import os
import socket
import subprocess
import threading
import zoneinfo

import pytest
from django.db import connection
from django.utils import timezone

from core.audit import AuditContext
from core.models import AuditEvent, JobRun, JobRunStatus
from instances.choices import RequestStatus
from instances.instructions.jobs import poll_source, poll_sources
from instances.instructions.sources import check_url, scrub
from instances.models import ChangeRequest, InstructionSource

pytestmark = pytest.mark.django_db

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Hosting team",
    "GIT_AUTHOR_EMAIL": "hosting@example.org",
    "GIT_COMMITTER_NAME": "Hosting team",
    "GIT_COMMITTER_EMAIL": "hosting@example.org",
}
SECRET = "glpat-s3cr3t/t0ken+value"


@pytest.fixture(autouse=True)
def _paris(settings):
    settings.TIME_ZONE = "Europe/Paris"


def git(*args, cwd) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=True)
    return done.stdout.strip()


class Repository:
    """A bare repository (the "server") and a work clone the tests commit from."""

    def __init__(self, root):
        self.bare, self.work = root / "remote.git", root / "work"
        git("init", "--quiet", "--bare", "--initial-branch=main", str(self.bare), cwd=root)
        git("clone", "--quiet", str(self.bare), str(self.work), cwd=root)
        git("symbolic-ref", "HEAD", "refs/heads/main", cwd=self.work)

    def commit(self, content: str | bytes, path: str = "instructions.txt") -> str:
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
        git("add", "--all", cwd=self.work)
        git("commit", "--quiet", "--allow-empty", "-m", "plan", cwd=self.work)
        git("push", "--quiet", "origin", "HEAD:main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


@pytest.fixture
def repo(tmp_path, settings):
    settings.PORTAL_INSTRUCTIONS_GIT_DIR = tmp_path / "scratch"
    return Repository(tmp_path)


@pytest.fixture
def source(repo, smile):
    return InstructionSource.objects.create(name="hosting", url=str(repo.bare), branch="main", path="instructions.txt")


def at(days=3, hour=14, minute=30) -> str:
    day = timezone.localdate(timezone.now(), PARIS) + datetime.timedelta(days=days)
    return datetime.datetime.combine(day, datetime.time(hour, minute)).strftime("%d/%m/%Y-%H:%M")


def test_a_new_commit_is_imported_as_the_system(repo, source, instance_unistra, instance_unicaen, tmp_path):
    sha = repo.commit(f"# plan\nU|smile-unistra|1.2.6|{at()}\nU|smile-unicaen|1.2.6|{at()}\nU|ghost|1.2.6|{at()}\n")
    outcome = poll_source(source.pk)
    source.refresh_from_db()
    assert outcome == f"hosting: {sha[:10]}: 2 created, 0 unchanged, 0 cancelled, 1 in error."
    assert (source.last_commit, source.last_error) == (sha, "")
    assert source.last_polled_at == source.last_imported_at is not None
    assert [(line["line"], line["status"]) for line in source.last_report["lines"]] == [
        (2, "created"),
        (3, "created"),
        (4, "error"),
    ]
    request = ChangeRequest.objects.get(instance=instance_unicaen)
    assert (request.instruction_source, request.instruction_commit, request.instruction_line) == (source, sha, 3)
    assert request.requested_by is None and request.requested_by_label == "system: instructions file hosting"
    assert AuditEvent.objects.get(action="request.submitted", target_id=str(request.pk)).actor_label == (
        "system: instructions file hosting"
    )
    assert list((tmp_path / "scratch" / "saas-portal-git").iterdir()) == []  # the scratch repository is gone


def test_the_same_commit_is_not_imported_again(repo, source, instance_unistra):
    repo.commit(f"U|smile-unistra|1.2.6|{at()}\n")
    poll_source(source.pk)
    ChangeRequest.objects.get().cancel(AuditContext.system("test"))
    report = InstructionSource.objects.get(pk=source.pk).last_report
    assert poll_source(source.pk) == "hosting: no new commit"
    assert ChangeRequest.objects.count() == 1  # the cancelled line was not filed again
    assert InstructionSource.objects.get(pk=source.pk).last_report == report
    # "Import now" imports the file again even though the commit did not move.
    assert poll_source(source.pk, force=True).endswith("1 created, 0 unchanged, 0 cancelled, 0 in error.")
    assert ChangeRequest.objects.filter(status=RequestStatus.SUBMITTED).count() == 1


def test_a_removed_line_cancels_its_request_at_the_next_commit(repo, source, instance_unistra, instance_unicaen):
    repo.commit(f"U|smile-unistra|1.2.6|{at()}\nU|smile-unicaen|1.2.6|{at()}\n")
    poll_source(source.pk)
    kept, removed = (
        ChangeRequest.objects.get(instance=instance_unistra),
        ChangeRequest.objects.get(instance=instance_unicaen),
    )
    sha = repo.commit(f"U|smile-unistra|1.2.6|{at()}\n")
    assert poll_source(source.pk) == f"hosting: {sha[:10]}: 0 created, 1 unchanged, 1 cancelled, 0 in error."
    kept.refresh_from_db()
    removed.refresh_from_db()
    assert (kept.status, removed.status) == (RequestStatus.SUBMITTED, RequestStatus.CANCELLED)
    lines = InstructionSource.objects.get(pk=source.pk).last_report["lines"]
    assert lines[1] == {
        "line": None,
        "status": "cancelled",
        "request": removed.pk,
        "message": f"Request #{removed.pk} cancelled: line 2 of commit {removed.instruction_commit[:10]} was "
        "removed from the file.",
        "warning": None,
        "instruction": "",
        "message_i18n": lines[1]["message_i18n"],
        "warning_i18n": None,
    }


def test_a_started_request_is_not_cancelled(repo, source, instance_unistra):
    repo.commit(f"U|smile-unistra|1.2.6|{at(-1)}\n")
    poll_source(source.pk)
    request = ChangeRequest.objects.get()
    ChangeRequest.objects.filter(pk=request.pk).update(status=RequestStatus.RUNNING)
    repo.commit("# nothing any more\n")
    poll_source(source.pk)
    request.refresh_from_db()
    assert request.status == RequestStatus.RUNNING
    assert InstructionSource.objects.get(pk=source.pk).last_report["lines"] == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"url": "/nonexistent/repository.git"}, "git ls-remote failed: fatal: '/nonexistent/repository.git' does"),
        ({"branch": "release"}, "The repository has no branch release."),
        ({"path": "missing.txt"}, "There is no file missing.txt in main at commit "),
        ({"path": "plans"}, "plans is not a file (it is a tree)."),
        ({"branch": "--upload-pack=touch /tmp/x"}, "is not a valid branch name."),
        ({"url": "ext::sh -c touch% /tmp/pwned"}, "This is not a git repository URL."),
    ],
)
def test_a_broken_repository_or_file_records_an_error_and_loses_nothing(
    repo, source, instance_unistra, change, expected
):
    first = repo.commit(f"U|smile-unistra|1.2.6|{at()}\n")
    poll_source(source.pk)
    report = InstructionSource.objects.get(pk=source.pk).last_report
    repo.commit(f"U|smile-unistra|1.2.5|{at(4)}\n")
    repo.commit("U|x|1|01/01/2030-10:00\n", path="plans/other.txt")
    InstructionSource.objects.filter(pk=source.pk).update(**change)
    outcome = poll_source(source.pk)
    source.refresh_from_db()
    assert expected in source.last_error and expected in outcome
    assert source.last_error_display == source.last_error
    assert (source.last_commit, source.last_report) == (first, report)
    assert ChangeRequest.objects.get().status == RequestStatus.SUBMITTED  # nothing cancelled, nothing filed


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"U|caf\xe9|1.2.6|01/01/2030-10:00\n", "The file is not UTF-8 text"),
        (b"# " + b"x" * 300, "The file is too big: 302 bytes, at most 200 are accepted."),
        (b"# c\n" * 6, "The file has 6 lines, at most 5 are accepted."),
    ],
)
def test_a_file_refused_whole_imports_nothing(repo, source, instance_unistra, settings, content, expected):
    settings.PORTAL_INSTRUCTIONS_MAX_BYTES, settings.PORTAL_INSTRUCTIONS_MAX_LINES = 200, 5
    repo.commit(f"U|smile-unistra|1.2.6|{at()}\n")
    poll_source(source.pk)
    repo.commit(content)
    poll_source(source.pk)
    source.refresh_from_db()
    assert source.last_error.startswith(expected)
    assert ChangeRequest.objects.get().status == RequestStatus.SUBMITTED


def test_an_error_clears_once_the_source_works_again(repo, source, instance_unistra):
    repo.commit(f"U|smile-unistra|1.2.6|{at()}\n", path="elsewhere.txt")
    poll_source(source.pk)
    assert InstructionSource.objects.get(pk=source.pk).last_error
    sha = repo.commit(f"U|smile-unistra|1.2.6|{at()}\n")
    poll_source(source.pk)
    source.refresh_from_db()
    assert (source.last_error, source.last_error_message, source.last_commit) == ("", None, sha)


class _AskForCredentials(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):
        self.seen.append(self.headers.get("Authorization", ""))
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_credentials_reach_git_but_never_the_error(repo, settings, smile):
    settings.PORTAL_INSTRUCTIONS_GIT_PROTOCOLS = ["http", "file"]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AskForCredentials)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _AskForCredentials.seen = []
    try:
        source = InstructionSource.objects.create(
            name="private",
            url=f"http://127.0.0.1:{server.server_port}/hosting/instructions.git",
            username="deploy",
            secret=SECRET,
        )
        outcome = poll_source(source.pk)
    finally:
        server.shutdown()
        server.server_close()
    expected = "Basic " + base64.b64encode(f"deploy:{SECRET}".encode()).decode()
    assert expected in _AskForCredentials.seen  # git was given the credentials, through GIT_ASKPASS
    source.refresh_from_db()
    assert "git ls-remote failed" in source.last_error and "Authentication failed" in source.last_error
    for text in (source.last_error, outcome, str(source.last_error_message)):
        assert SECRET not in text and "s3cr3t" not in text
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM instances_instructionsource WHERE id = %s", [source.pk])
        stored = cursor.fetchone()[0]
    assert stored.startswith("fernet:") and "s3cr3t" not in stored  # encrypted at rest


def test_a_repository_that_does_not_answer_is_given_up_in_time(repo, settings, smile):
    settings.PORTAL_INSTRUCTIONS_GIT_PROTOCOLS = ["http"]
    settings.PORTAL_INSTRUCTIONS_GIT_TIMEOUT = 1
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts connections in the kernel, never answers
    try:
        source = InstructionSource.objects.create(name="slow", url=f"http://127.0.0.1:{silent.getsockname()[1]}/r.git")
        started = timezone.now()
        poll_source(source.pk)
    finally:
        silent.close()
    assert (timezone.now() - started).total_seconds() < 10
    source.refresh_from_db()
    assert source.last_error == "git ls-remote took more than 1 seconds and was stopped."


def test_an_unreadable_secret_is_an_error(repo, source):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE instances_instructionsource SET secret = 'fernet:garbage' WHERE id = %s", [source.pk])
    poll_source(source.pk)
    assert InstructionSource.objects.get(pk=source.pk).last_error == (
        "The stored password or token cannot be decrypted: the encryption keys changed."
    )


def test_the_periodic_job_polls_due_enabled_sources_and_records_its_run(repo, source, instance_unistra):
    sha = repo.commit(f"U|smile-unistra|1.2.6|{at()}\n")
    InstructionSource.objects.create(name="off", url=str(repo.bare), enabled=False)
    recent = InstructionSource.objects.create(name="recent", url="/nonexistent.git", last_polled_at=timezone.now())
    assert poll_sources() == f"hosting: {sha[:10]}: 1 created, 0 unchanged, 0 cancelled, 0 in error."
    run = JobRun.objects.get(name="instruction sources")
    assert run.status == JobRunStatus.SUCCEEDED and "1 created" in run.result
    assert InstructionSource.objects.get(name="off").last_polled_at is None
    assert InstructionSource.objects.get(pk=recent.pk).last_error == ""
    assert poll_sources() == "no source due"  # polled a moment ago: not due before its interval


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://git.example.org/hosting/instructions.git", True),
        ("git@git.example.org:hosting/instructions.git", True),
        ("ssh://git@git.example.org/hosting/instructions.git", True),
        ("/srv/git/instructions.git", True),
        ("https://deploy:token@git.example.org/x.git", False),
        ("http://git.example.org/x.git", False),
        ("ext::sh -c id", False),
        ("-uhello", False),
        ("", False),
    ],
)
def test_source_urls(url, allowed):
    assert (check_url(url, ["https", "ssh", "file"]) is None) == allowed


def test_scrub_removes_secrets_in_every_spelling():
    text = f"fatal: https://deploy:{SECRET}@host/x.git and glpat-s3cr3t%2Ft0ken%2Bvalue and {SECRET}"
    cleaned = scrub(text, [SECRET])
    assert "s3cr3t" not in cleaned and "deploy" not in cleaned
    assert cleaned.startswith("fatal: https://[redacted]@host/x.git")
