"""An existing database migrates forward across the move of organisations and the audit trail to `core`.

`data/before_core_*.sql.gz` are databases made by the portal as it was before the move (commit 989a51b): migrated,
`seed_demo` run, an upgrade filed and approved, a creation filed, an emulated and a kubeconfig cluster, an
operation, a backup, a rollout snapshot and an API token. Each is loaded into a fresh database and `manage.py
migrate` is run against it in a separate process, as an administrator would after pulling the new code.
"""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
# The Fernet key the fixtures' kubeconfigs were encrypted with (32 bytes of "k"); test-only.
ENCRYPTION_KEY = "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s="
POSTGRES = "postgres://postgres@127.0.0.1:5432"
OLD_DATABASE = "saas_portal_migrate_forward"

CHECK = """
import gzip
import json
from django.db import connection
from django.contrib.auth import get_user_model
from core.models import AuditEvent, Membership, Organisation
from instances.models import Backup, ChangeRequest, Cluster, Instance, Operation
clusters = {c.name: (c.connection, c.kubeconfig) for c in Cluster.objects.all()}
print(json.dumps({
    "tables": sorted(t for t in connection.introspection.table_names() if t.startswith(("core_", "portal_"))),
    "organisations": sorted(Organisation.objects.values_list("slug", flat=True)),
    "memberships": Membership.objects.count(),
    "users": get_user_model().objects.count(),
    "events": sorted(AuditEvent.objects.values_list("action", flat=True)),
    "requests": sorted(ChangeRequest.objects.values_list("kind", "status", "organisation__slug")),
    "instances": sorted(Instance.objects.values_list("slug", "organisation__slug", "cluster__name")),
    "operations": Operation.objects.count(),
    "backups": Backup.objects.count(),
    "clusters": clusters,
}))
"""


def manage(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": database_url,
        "PORTAL_ENCRYPTION_KEYS": ENCRYPTION_KEY,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def migrate_and_read(database_url: str) -> dict:
    migrated = manage(database_url, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    pending = manage(database_url, "migrate", "--check")
    assert pending.returncode == 0, pending.stdout + pending.stderr
    checked = manage(database_url, "shell", "-c", CHECK)
    assert checked.returncode == 0, checked.stderr
    return json.loads(checked.stdout.strip().splitlines()[-1])


def assert_everything_kept(state: dict) -> None:
    assert state["tables"] == ["core_auditevent", "core_jobrun", "core_membership", "core_organisation"]
    assert state["organisations"] == ["unicaen", "unistra"]
    assert state["memberships"] == 4
    assert state["users"] == 6
    assert state["events"] == ["request.approved", "request.submitted", "request.submitted"]
    assert state["requests"] == [["create", "submitted", "unistra"], ["update", "approved", "unistra"]]
    assert state["instances"] == [["smile-unicaen", "unicaen", None], ["smile-unistra", "unistra", "sandbox"]]
    assert (state["operations"], state["backups"]) == (1, 1)
    # The emulated cluster became a kubeconfig cluster pointing at the emulator; the real one kept its secret.
    connection, kubeconfig = state["clusters"]["sandbox"]
    assert connection == "kubeconfig" and "server: http://127.0.0.1:8090" in kubeconfig
    connection, kubeconfig = state["clusters"]["prod"]
    assert connection == "kubeconfig" and "token: fixture-secret-token" in kubeconfig


def test_an_old_sqlite_database_migrates_forward(tmp_path):
    import sqlite3

    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.executescript(gzip.decompress((DATA / "before_core_sqlite.sql.gz").read_bytes()).decode())
    assert_everything_kept(migrate_and_read(f"sqlite:///{path}"))


@pytest.fixture
def old_postgres_database():
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{OLD_DATABASE}"')
        connection.execute(f'CREATE DATABASE "{OLD_DATABASE}"')
    with psycopg.connect(f"{POSTGRES}/{OLD_DATABASE}", autocommit=True) as connection:
        connection.execute(gzip.decompress((DATA / "before_core_postgres.sql.gz").read_bytes()).decode())
    yield f"{POSTGRES}/{OLD_DATABASE}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{OLD_DATABASE}" WITH (FORCE)')


def test_an_old_postgres_database_migrates_forward_and_keeps_its_audit_trail_append_only(old_postgres_database):
    assert_everything_kept(migrate_and_read(old_postgres_database))
    with psycopg.connect(old_postgres_database, autocommit=True) as connection:
        for statement in ("UPDATE core_auditevent SET reason = 'rewritten'", "DELETE FROM core_auditevent"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                connection.execute(statement)
        triggers = connection.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'core_auditevent'::regclass AND NOT tgisinternal"
        ).fetchall()
    assert triggers == [("core_auditevent_append_only",)]
