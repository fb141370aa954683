"""The backup and restore Jobs of a rendered instance, run for real.

Each test renders an instance with the portal's renderer, takes the Job the portal would start from the
timemachine or the restore CronJob, and runs its container's command as a subprocess through kubesim's host job
runner (the sandbox runs Jobs the same way): the real pg_dump, pg_restore and psql from /usr/bin against real
PostgreSQL databases, the real aws CLI against the local S3 server (moto). Only the cluster's addresses are
overridden (PGHOST, PGPORT, PGDATABASE) and the application's role (a role of this module's own: roles are
server-wide); the Secrets hold what the portal writes into them (``BackupCredentials.secret_data``).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from instances.engine.credentials import BackupCredentials, instance_prefix
from instances.kube.objects import job_from_cronjob
from instances.kube.overlay import OverlaySpec
from instances.kube.render import render
from kubesim import jobrunner
from tests.instances.test_isolation import DIGEST_IMAGES
from tests.processes import POSTGRES, drop_postgres, free_port
from tests.s3_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY

SLUG = "smile-backup-jobs"
SPEC = OverlaySpec(instance=SLUG, organisation="unistra", images=DIGEST_IMAGES, host="smile.backup-jobs.example.org")
TOOLS = str(Path(sys.executable).parent)  # the aws CLI of the virtualenv
TIMEOUT = 120
COURSES = [(1, "Algèbre linéaire", 6), (2, "Thermodynamique", 4), (3, "Histoire de l'art — XXe siècle", 3)]
ENROLMENTS = [(1, 1, "alice"), (2, 1, "bob"), (3, 3, "chloé")]


@pytest.fixture(scope="module")
def cronjobs():
    rendered = render(SPEC)
    return {name: rendered.get("CronJob", name) for name in ("smile-timemachine", "smile-restore")}


@pytest.fixture(scope="module")
def role():
    """The application's role for this module (the base's ``smile``): it owns the databases and their tables."""
    name = f"smile_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE ROLE "{name}" NOLOGIN')
    yield name
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP ROLE IF EXISTS "{name}"')


@pytest.fixture
def databases(role):
    """``create(rows=True)`` makes a database owned by the role (with the known rows, or empty); all are dropped."""
    names = []

    def create(rows: bool = True) -> str:
        name = f"backupjobs_{uuid.uuid4().hex[:10]}"
        names.append(name)
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
        if rows:
            with psycopg.connect(f"{POSTGRES}/{name}") as connection:
                connection.execute(f'SET ROLE "{role}"')
                connection.execute("CREATE TABLE course (id integer PRIMARY KEY, title text NOT NULL, credits int)")
                connection.execute(
                    "CREATE TABLE enrolment (id integer PRIMARY KEY, course integer REFERENCES course, student text)"
                )
                connection.cursor().executemany("INSERT INTO course VALUES (%s, %s, %s)", COURSES)
                connection.cursor().executemany("INSERT INTO enrolment VALUES (%s, %s, %s)", ENROLMENTS)
        return name

    yield create
    for name in names:
        drop_postgres(name)
        drop_postgres(f"{name}_drill")


def rows(database: str) -> dict[str, list[tuple]]:
    with psycopg.connect(f"{POSTGRES}/{database}") as connection:
        return {
            table: connection.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()  # two literal table names
            for table in ("course", "enrolment")
        }


def owners(database: str) -> set[str]:
    with psycopg.connect(f"{POSTGRES}/{database}") as connection:
        return {r[0] for r in connection.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")}


def database_exists(name: str) -> bool:
    with psycopg.connect(f"{POSTGRES}/postgres") as connection:
        return connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def storage_secret(endpoint: str, bucket: str, **changes) -> dict:
    """The instance's storage Secret as the portal writes it (its files), with ``changes`` to its fields."""
    fields = {"endpoint": endpoint, "bucket": bucket, "prefix": instance_prefix(SLUG), "region": REGION,
              "access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY, **changes}  # fmt: skip
    return {"stringData": BackupCredentials(**fields).secret_data()}


class Storage:
    """A bucket of the local S3 server and the Secrets that reach it; ``run`` runs a Job of the instance."""

    def __init__(self, s3_server, role: str):
        self.server = s3_server
        self.bucket = s3_server.bucket()
        self.role = role
        self.secrets = {
            "smile-database-superuser": {"stringData": {"password": "trust authentication: any password works"}},
            "smile-timemachine-s3": storage_secret(s3_server.endpoint, self.bucket),
        }
        self.runs = 0

    def run(self, cronjob: dict, database: str, env: dict | None = None, secrets: dict | None = None):
        """Run the Job the portal would start from ``cronjob`` (with ``env`` set in its container, as the engine
        sets RESTORE_KEY and RESTORE_MODE); returns (exit code, stdout, stderr, Job name)."""
        self.runs += 1
        name = f"{cronjob['metadata']['name']}-test-{self.runs}"
        owned = {**cronjob, "metadata": {**cronjob["metadata"], "uid": str(uuid.uuid4())}}
        job = job_from_cronjob(owned, name, env=env)
        overrides = {"PGHOST": "127.0.0.1", "PGPORT": "5432", "PGUSER": "postgres", "PGDATABASE": database,
                     "RESTORE_ROLE": self.role}  # fmt: skip
        argv, environment, workdir = jobrunner.prepare(
            job, {**self.secrets, **(secrets or {})}, overrides, path=[TOOLS]
        )
        try:
            code, stdout, stderr = jobrunner.run(argv, environment, workdir, TIMEOUT)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return code, stdout, stderr, name

    def key(self, job: str) -> str:
        return f"{instance_prefix(SLUG)}{job}.dump"

    def objects(self) -> list[str]:
        return [o["Key"] for o in self.server.client().list_objects_v2(Bucket=self.bucket).get("Contents", [])]


@pytest.fixture
def storage(s3_server, role):
    return Storage(s3_server, role)


@pytest.fixture
def dumped(storage, cronjobs, databases):
    """A database with the known rows and the key of its dump, taken by the timemachine Job."""
    database = databases()
    code, stdout, stderr, job = storage.run(cronjobs["smile-timemachine"], database)
    assert code == 0, stderr
    return database, storage.key(job), stdout


# --- The dump -------------------------------------------------------------------------------------------------


def test_the_dump_reaches_the_storage_with_its_size_and_checksum_and_restores_the_same_rows(
    storage, dumped, databases, tmp_path
):
    database, key, stdout = dumped
    assert f"uploaded s3://{storage.bucket}/{key}" in stdout
    assert storage.objects() == [key]
    got = storage.server.client().get_object(Bucket=storage.bucket, Key=key)
    body = got["Body"].read()
    assert got["Metadata"] == {"sha256": hashlib.sha256(body).hexdigest(), "size": str(len(body))}
    assert body.startswith(b"PGDMP")  # pg_dump's custom format

    (tmp_path / "dump").write_bytes(body)
    fresh = databases(rows=False)
    restored = subprocess.run(
        ["/usr/bin/pg_restore", "--no-owner", "--exit-on-error", "-h", "127.0.0.1", "-U", "postgres", "-d", fresh,
         str(tmp_path / "dump")],
        capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    assert rows(fresh) == rows(database) == {"course": COURSES, "enrolment": ENROLMENTS}


def test_a_failing_pg_dump_fails_the_job_and_uploads_nothing(storage, cronjobs):
    code, _, stderr, _ = storage.run(cronjobs["smile-timemachine"], f"missing_{uuid.uuid4().hex[:8]}")
    assert code == 3
    assert "does not exist" in stderr and "pg_dump of database missing_" in stderr
    assert "nothing uploaded" in stderr
    assert storage.objects() == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda storage: {"endpoint": f"http://127.0.0.1:{free_port()}"}, id="unreachable-storage"),
        pytest.param(lambda storage: {"bucket": f"{storage.bucket}-missing"}, id="bucket-refused"),
    ],
)
def test_an_upload_that_fails_fails_the_job(storage, cronjobs, databases, change):
    secret = storage_secret(**{"endpoint": storage.server.endpoint, "bucket": storage.bucket, **change(storage)})
    code, _, stderr, _ = storage.run(
        cronjobs["smile-timemachine"], databases(), secrets={"smile-timemachine-s3": secret}
    )
    assert code == 4
    assert "upload of the dump to s3://" in stderr and "failed" in stderr
    assert storage.objects() == []


def test_credentials_the_cli_cannot_use_fail_the_job(storage, cronjobs, databases):
    """moto accepts any key pair, so what a storage would refuse is played by a credentials file without keys."""
    secret = storage_secret(storage.server.endpoint, storage.bucket)
    secret["stringData"]["credentials"] = "[default]\n"
    code, _, stderr, _ = storage.run(
        cronjobs["smile-timemachine"], databases(), secrets={"smile-timemachine-s3": secret}
    )
    assert code == 4
    assert "Unable to locate credentials" in stderr and "upload of the dump" in stderr
    assert storage.objects() == []


def test_a_key_the_storage_refuses_fails_the_job(authenticating_s3, cronjobs, databases, role):
    """A storage that checks keys refuses the instance's: the upload, and so the Job, fails saying so."""
    refusing = Storage(authenticating_s3, role)  # its bucket is the storage's one anonymous request
    code, _, stderr, _ = refusing.run(cronjobs["smile-timemachine"], databases())
    assert code == 4
    assert "InvalidAccessKeyId" in stderr and "upload of the dump" in stderr


def test_without_the_storage_secret_the_job_fails_saying_why(storage, cronjobs, databases):
    code, _, stderr, _ = storage.run(cronjobs["smile-timemachine"], databases(), secrets={"smile-timemachine-s3": None})
    assert code == 2
    assert "no backup storage credentials for this instance" in stderr


# --- The restore ----------------------------------------------------------------------------------------------


def change(database: str) -> dict:
    """Change every table of the database (as the application would after the dump); returns its rows."""
    with psycopg.connect(f"{POSTGRES}/{database}") as connection:
        connection.execute("DELETE FROM enrolment WHERE id = 2")
        connection.execute("UPDATE course SET credits = 99 WHERE id = 1")
        connection.execute("INSERT INTO course VALUES (4, 'Added after the dump', 1)")
    changed = rows(database)
    assert changed != {"course": COURSES, "enrolment": ENROLMENTS}
    return changed


def test_restore_replace_brings_the_database_back_to_the_dump_owned_by_the_application(storage, cronjobs, dumped, role):
    database, key, _ = dumped
    change(database)
    code, stdout, stderr, _ = storage.run(
        cronjobs["smile-restore"], database, env={"RESTORE_KEY": key, "RESTORE_MODE": "replace"}
    )
    assert code == 0, stderr
    assert f"restored s3://{storage.bucket}/{key} into {database}" in stdout
    assert rows(database) == {"course": COURSES, "enrolment": ENROLMENTS}
    # Owned by the application's role as before, so the application can write to them again.
    assert owners(database) == {role}


def test_a_drill_restores_into_a_scratch_database_and_drops_it(storage, cronjobs, dumped):
    database, key, _ = dumped
    code, stdout, stderr, _ = storage.run(
        cronjobs["smile-restore"], database, env={"RESTORE_KEY": key, "RESTORE_MODE": "drill"}
    )
    assert code == 0, stderr
    assert "drill passed" in stdout and "2 tables" in stdout
    assert not database_exists(f"{database}_drill")
    assert rows(database) == {"course": COURSES, "enrolment": ENROLMENTS}


def test_a_drill_of_a_dump_without_tables_fails_and_drops_the_scratch_database(storage, cronjobs, databases):
    empty = databases(rows=False)
    code, _, stderr, job = storage.run(cronjobs["smile-timemachine"], empty)
    assert code == 0, stderr
    code, _, stderr, _ = storage.run(
        cronjobs["smile-restore"], empty, env={"RESTORE_KEY": storage.key(job), "RESTORE_MODE": "drill"}
    )
    assert code == 7
    assert "drill failed" in stderr and "restores no table" in stderr
    assert not database_exists(f"{empty}_drill")


def put(storage: Storage, key: str, body: bytes, sha256: str | None) -> None:
    metadata = {"sha256": sha256, "size": str(len(body))} if sha256 else {}
    storage.server.client().put_object(Bucket=storage.bucket, Key=key, Body=body, Metadata=metadata)


def _corrupt(storage, key):
    """The dump's bytes with one changed, under its recorded checksum."""
    got = storage.server.client().get_object(Bucket=storage.bucket, Key=key)
    body = bytearray(got["Body"].read())
    body[len(body) // 2] ^= 0xFF
    put(storage, key, bytes(body), got["Metadata"]["sha256"])
    return key


def _not_a_dump(storage, key):
    body = b"this is not a pg_dump archive\n" * 10
    put(storage, f"{key}.bad", body, hashlib.sha256(body).hexdigest())
    return f"{key}.bad"


def _no_checksum(storage, key):
    body = storage.server.client().get_object(Bucket=storage.bucket, Key=key)["Body"].read()
    put(storage, f"{key}.bare", body, None)
    return f"{key}.bare"


@pytest.mark.parametrize(
    ("make_key", "mode", "exit_code", "message"),
    [
        pytest.param(lambda s, k: f"{instance_prefix(SLUG)}missing.dump", "replace", 3, "cannot be read", id="missing"),
        pytest.param(_corrupt, "replace", 4, "is corrupt: its SHA-256 is", id="wrong-checksum"),
        pytest.param(_no_checksum, "replace", 4, "has no sha256 metadata", id="no-checksum"),
        pytest.param(_not_a_dump, "replace", 5, "is not a valid pg_dump archive", id="not-a-dump"),
        pytest.param(
            lambda s, k: "instances/other-instance/x.dump",
            "replace",
            2,
            "is not a backup of this instance",
            id="another-instance",
        ),
        pytest.param(lambda s, k: k, "everything", 2, "RESTORE_MODE must be replace or drill", id="unknown-mode"),
        pytest.param(_corrupt, "drill", 4, "is corrupt", id="drill-wrong-checksum"),
    ],
)
def test_a_restore_that_cannot_be_trusted_fails_and_leaves_the_database_as_it_was(
    storage, cronjobs, dumped, make_key, mode, exit_code, message
):
    database, key, _ = dumped
    changed = change(database)
    code, _, stderr, _ = storage.run(
        cronjobs["smile-restore"], database, env={"RESTORE_KEY": make_key(storage, key), "RESTORE_MODE": mode}
    )
    assert code == exit_code, stderr
    assert message in stderr and f"the database {database} is untouched" in stderr
    assert rows(database) == changed
    assert not database_exists(f"{database}_drill")


def test_a_restore_from_an_unreachable_storage_fails_and_leaves_the_database_as_it_was(storage, cronjobs, dumped):
    database, key, _ = dumped
    changed = change(database)
    secret = storage_secret(f"http://127.0.0.1:{free_port()}", storage.bucket)
    code, _, stderr, _ = storage.run(
        cronjobs["smile-restore"], database, env={"RESTORE_KEY": key, "RESTORE_MODE": "replace"},
        secrets={"smile-timemachine-s3": secret},
    )  # fmt: skip
    assert code == 3
    assert "cannot be read" in stderr and f"the database {database} is untouched" in stderr
    assert rows(database) == changed
