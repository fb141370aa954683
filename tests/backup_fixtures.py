"""The backup Jobs' effect on the storage, for engine tests whose emulated cluster runs no container.

The real timemachine and restore scripts are run for real elsewhere (their commands taken from the rendered
overlay, with pg_dump, pg_restore and the aws CLI). Here :class:`BackupJobs` plays their observable contract, so
the portal's side (verification, retention, download, restore) meets a storage that holds what a Job left:

- a timemachine Job reads the instance's Secret ``smile-timemachine-s3`` (from the emulator, as its pod would
  mount it) and puts a small dump at ``<prefix><job>.dump`` with the ``sha256`` and ``size`` metadata; without
  the Secret it fails as the script does;
- a restore Job (``RESTORE_KEY`` in its environment) succeeds if and only if that object exists.

Any other Job succeeds at once. ``upload`` switches the upload off (a Job that "succeeded" without leaving a
dump); ``payload`` is what the dumps hold.
"""

from __future__ import annotations

import base64
import hashlib
import threading

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from instances.models import Instance

STORAGE_SECRET = "smile-timemachine-s3"
TEST_KEY_ID = "AKIAINSTANCETESTKEY1"


def _pod_spec(job: dict) -> dict:
    return job.get("spec", {}).get("template", {}).get("spec", {}) or {}


def _env(job: dict) -> dict[str, str]:
    return {
        e["name"]: e.get("value", "")
        for c in _pod_spec(job).get("containers", [])
        for e in c.get("env", [])
        if "name" in e
    }


def _mounts_storage(job: dict) -> bool:
    return any((v.get("secret") or {}).get("secretName") == STORAGE_SECRET for v in _pod_spec(job).get("volumes", []))


def secret_files(emulator, namespace: str, name: str = STORAGE_SECRET) -> dict[str, str] | None:
    """A Secret's files as its pods would read them, or None when it does not exist."""
    secret = emulator.get_object("v1", "Secret", namespace, name)
    if secret is None:
        return None
    files = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    return {**files, **(secret.get("stringData") or {})}


def storage_client(files: dict[str, str]):
    """A boto3 client with the key pair of the Secret's ``credentials`` file (as the AWS CLI would read it)."""
    pairs = dict(
        line.split(" = ", 1) for line in files["credentials"].splitlines() if " = " in line
    )  # the file the portal writes: "name = value" lines
    return boto3.client(
        "s3",
        endpoint_url=files["endpoint"],
        region_name=files.get("region") or "us-east-1",
        aws_access_key_id=pairs["aws_access_key_id"],
        aws_secret_access_key=pairs["aws_secret_access_key"],
        config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 1}),
    )


class BackupJobs:
    """A ``job_runner`` for :class:`kubesim.SimulatedControllers` (see the module docstring)."""

    def __init__(self, emulator, payload: bytes = b"PGDMP test dump\n"):
        self.emulator = emulator
        self.payload = payload
        self.upload = True
        self.uploaded: list[str] = []  # keys, in the order the Jobs uploaded them
        self.restored: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, job: dict) -> tuple[bool, str]:
        env = _env(job)
        if "RESTORE_KEY" in env:
            return self._restore(job, env["RESTORE_KEY"])
        if _mounts_storage(job):
            return self._dump(job)
        return True, ""

    def _storage(self, job: dict) -> dict[str, str] | None:
        files = secret_files(self.emulator, job["metadata"].get("namespace", ""))
        return files if files and files.get("credentials") else None

    def _dump(self, job: dict) -> tuple[bool, str]:
        files = self._storage(job)
        if files is None:
            return False, "no backup storage credentials for this instance (Secret smile-timemachine-s3)"
        key = f"{files['prefix']}{job['metadata']['name']}.dump"
        if not self.upload:
            return True, ""
        metadata = {"sha256": hashlib.sha256(self.payload).hexdigest(), "size": str(len(self.payload))}
        try:
            storage_client(files).put_object(Bucket=files["bucket"], Key=key, Body=self.payload, Metadata=metadata)
        except (ClientError, BotoCoreError) as error:
            return False, f"upload failed: {error}"
        with self._lock:
            self.uploaded.append(key)
        return True, ""

    def _restore(self, job: dict, key: str) -> tuple[bool, str]:
        files = self._storage(job)
        if files is None:
            return False, "no backup storage credentials for this instance (Secret smile-timemachine-s3)"
        try:
            storage_client(files).head_object(Bucket=files["bucket"], Key=key)
        except (ClientError, BotoCoreError) as error:
            return False, f"the dump {key} cannot be read: {error}"
        with self._lock:
            self.restored.append(key)
        return True, ""


def give_backup_credentials(instance: Instance, key_id: str = TEST_KEY_ID) -> Instance:
    """Give an instance a storage key of its own, as a maintainer does in the admin (moto accepts any pair)."""
    instance.backup_access_key_id = key_id
    instance.backup_secret_access_key = f"secret-of-{instance.slug}"
    instance.save(update_fields=["backup_access_key_id", "backup_secret_access_key"])
    return instance
