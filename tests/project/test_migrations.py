"""An existing database migrates forward across the move of organisations and the audit trail to `core`.

`data/before_core_*.sql.gz` are databases made by the portal as it was before the move (commit 989a51b): migrated,
`seed_demo` run, an upgrade filed and approved, a creation filed, an emulated and a kubeconfig cluster, an
operation, a backup, a rollout snapshot and an API token. Each is loaded into a fresh database and `manage.py
migrate` is run against it in a separate process, as an administrator would after pulling the new code.
"""

import gzip
import json
from pathlib import Path

import psycopg
import pytest

from tests.processes import Portal, drop_postgres, fresh_postgres

DATA = Path(__file__).resolve().parent / "data"
# The Fernet key the fixtures' kubeconfigs were encrypted with (32 bytes of "k"); test-only.
ENCRYPTION_KEY = "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s="
OLD_DATABASE = "saas_portal_migrate_forward"

# The API token the fixtures hold in clear (DRF's authtoken app, before personal tokens were hashed).
LEGACY_TOKEN = "0123456789abcdef0123456789abcdef01234567"
CHECK = (
    f"LEGACY_TOKEN = {LEGACY_TOKEN!r}"
    + """
import gzip
import json
from django.db import connection
from django.contrib.auth import get_user_model
from core.models import ApiToken, AuditEvent, Membership, Organisation
from knox.crypto import hash_token
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
    "tokens": [(t.user.username, t.digest == hash_token(LEGACY_TOKEN), t.token_key) for t in ApiToken.objects.all()],
    "clear_tokens": connection.cursor().execute("SELECT count(*) FROM authtoken_token").fetchone()[0],
}))
"""
)


def migrate_and_read(database_url: str) -> dict:
    portal = Portal(database_url, PORTAL_ENCRYPTION_KEYS=ENCRYPTION_KEY)
    try:
        portal.manage("migrate", "--noinput", timeout=300)
        portal.manage("migrate", "--check")
        return json.loads(portal.manage("shell", "-c", CHECK).strip().splitlines()[-1])
    finally:
        portal.stop()


def assert_everything_kept(state: dict) -> None:
    assert state["tables"] == [
        "core_apitoken",
        "core_auditevent",
        "core_jobrun",
        "core_membership",
        "core_organisation",
    ]
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
    # The token kept in clear became a hashed personal token that the same secret still opens; no clear copy left.
    assert len(state["tokens"]) == 1
    _user, same_secret, prefix = state["tokens"][0]
    assert same_secret and prefix == LEGACY_TOKEN[:15]
    assert state["clear_tokens"] == 0


def test_an_old_sqlite_database_migrates_forward(tmp_path):
    import sqlite3

    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.executescript(gzip.decompress((DATA / "before_core_sqlite.sql.gz").read_bytes()).decode())
    assert_everything_kept(migrate_and_read(f"sqlite:///{path}"))


@pytest.fixture
def old_postgres_database():
    url = fresh_postgres(OLD_DATABASE)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(gzip.decompress((DATA / "before_core_postgres.sql.gz").read_bytes()).decode())
    yield url
    drop_postgres(OLD_DATABASE)


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
