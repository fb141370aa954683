"""A backup is what the storage holds: verification against a real S3 server (moto), and run_backup end to end."""

import hashlib
import urllib.request

import pytest

from instances import workflow
from instances.choices import BackupStatus, BackupTrigger, RequestStatus
from instances.engine import dispatcher, storage
from instances.models import Backup
from tests.backup_fixtures import give_backup_credentials
from tests.engine_fixtures import ctx, run_worker
from tests.processes import free_port

DUMP = b"PGDMP a dump of known rows\n" * 100
KEY = "instances/smile-unistra/smile-timemachine-manual-1.dump"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def instance(instance_unistra, backup_storage):
    return give_backup_credentials(instance_unistra)


def put(backup_storage, settings, body: bytes, **metadata):
    backup_storage.client().put_object(Bucket=settings.PORTAL_BACKUP_S3_BUCKET, Key=KEY, Body=body, Metadata=metadata)


def test_a_dump_whose_size_and_checksum_match_is_verified(instance, backup_storage, settings):
    put(backup_storage, settings, DUMP, sha256=sha(DUMP), size=str(len(DUMP)))
    result = storage.verify(instance, KEY)
    assert (result.ok, result.reason, result.size, result.sha256) == (True, None, len(DUMP), sha(DUMP))
    assert storage.dump_key(instance, "smile-timemachine-manual-1") == KEY


@pytest.mark.parametrize(
    "body, metadata, reason",
    [
        (None, None, f"its dump {KEY} is not in the storage"),
        (b"", {"sha256": sha(b""), "size": "0"}, f"its dump {KEY} is empty"),
        (DUMP, {"sha256": sha(b"another dump"), "size": str(len(DUMP))},
         "its dump's SHA-256 is not the one recorded: the object was altered or truncated"),
        (DUMP, {"sha256": sha(DUMP), "size": str(len(DUMP) + 1)},
         f"its dump has {len(DUMP)} bytes, not the {len(DUMP) + 1} bytes recorded"),
        (DUMP, {}, "no checksum was recorded with its dump"),
    ],
    ids=["missing", "empty", "wrong checksum", "size mismatch", "no metadata"],
)  # fmt: skip
def test_what_is_not_a_whole_dump_fails_verification_saying_why(
    instance, backup_storage, settings, body, metadata, reason
):
    if body is not None:
        put(backup_storage, settings, body, **metadata)
    result = storage.verify(instance, KEY)
    assert not result.ok
    assert result.reason.english == reason


def test_without_credentials_of_its_own_nothing_is_read(instance_unistra, backup_storage):
    result = storage.verify(instance_unistra, KEY)
    assert not result.ok
    assert result.reason.english == "the instance has no backup storage credentials of its own"


def test_an_unreachable_storage_fails_verification_quickly(instance, settings):
    settings.PORTAL_BACKUP_S3_ENDPOINT = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = storage.verify(instance, KEY)
    assert not result.ok
    assert result.reason.english.startswith("the storage cannot be reached: ")


def test_wrong_credentials_are_access_denied_and_say_so(instance, authenticating_s3, settings):
    settings.PORTAL_BACKUP_S3_ENDPOINT = authenticating_s3.endpoint
    settings.PORTAL_BACKUP_S3_BUCKET = authenticating_s3.bucket()
    result = storage.verify(instance, KEY)  # the instance's key is unknown to this storage
    assert not result.ok
    assert result.reason.english.startswith("the storage denied access with the instance's credentials (")
    secret = instance.backup_secret_access_key
    assert secret not in result.reason.english and instance.backup_access_key_id not in result.reason.english


def test_a_signed_url_serves_the_dump_and_delete_removes_it(instance, backup_storage, settings):
    put(backup_storage, settings, DUMP, sha256=sha(DUMP), size=str(len(DUMP)))
    url = storage.signed_url(instance, KEY, seconds=60)
    assert "X-Amz-Expires=60" in url and "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == DUMP
    storage.delete(instance, KEY)
    assert storage.verify(instance, KEY).reason.english == f"its dump {KEY} is not in the storage"
    storage.delete(instance, KEY)  # already gone: not an error


def test_retention_deletes_with_the_portals_own_key(instance_unistra, backup_storage, settings):
    """The instances' keys may not delete (README: backup credentials): a deletion uses the portal's key, so it
    works for an instance that has no key of its own, and not without the portal's key."""
    put(backup_storage, settings, DUMP, sha256=sha(DUMP), size=str(len(DUMP)))
    with pytest.raises(storage.StorageError, match="no backup storage credentials of its own"):
        storage.delete(instance_unistra, KEY)
    settings.PORTAL_BACKUP_S3_ACCESS_KEY_ID = "AKIAPORTALOWNKEY0001"
    settings.PORTAL_BACKUP_S3_SECRET_ACCESS_KEY = "the-portals-own-secret"
    storage.delete(instance_unistra, KEY)
    objects = backup_storage.client().list_objects_v2(Bucket=settings.PORTAL_BACKUP_S3_BUCKET).get("Contents", [])
    assert objects == []


def back_up(admin, instance) -> Backup:
    request = workflow.request_backup(ctx(admin), instance)
    dispatcher.dispatch()
    run_worker()
    request.refresh_from_db()
    return request, Backup.objects.get(instance=instance, trigger=BackupTrigger.MANUAL)


def test_run_backup_marks_the_backup_verified_with_what_the_storage_holds(deployed, admin_unistra, controllers):
    request, backup = back_up(admin_unistra, deployed)
    assert request.status == RequestStatus.SUCCEEDED, request.result
    payload = controllers.job_runner.payload
    assert backup.status == BackupStatus.VERIFIED and backup.verified_at is not None
    assert backup.storage_key == f"instances/smile-new/{backup.job_name}.dump"
    assert (backup.size, backup.sha256) == (len(payload), sha(payload))
    assert controllers.job_runner.uploaded == [backup.storage_key]
    log = [line["message"] for line in request.operations.get().log]
    assert any(line.startswith(f"backup {backup.storage_key} verified in the storage") for line in log)


def test_a_job_that_succeeded_without_leaving_a_dump_is_a_failed_backup(deployed, admin_unistra, controllers):
    controllers.job_runner.upload = False
    request, backup = back_up(admin_unistra, deployed)
    assert backup.status == BackupStatus.FAILED and backup.verified_at is None
    key = f"instances/smile-new/{backup.job_name}.dump"
    assert backup.message == f"the Job succeeded but its dump {key} is not in the storage"
    assert request.status == RequestStatus.FAILED
    assert "is not in the storage" in request.result
