"""The backup storage as the portal reads it: is a dump really there, whole, and the one the Job recorded?

Reads use the instance's own credentials (``credentials``): the portal checks and signs only what the
instance's key may reach. Deletions (retention) use the portal's own key when one is configured
(``PORTAL_BACKUP_S3_ACCESS_KEY_ID``), since the instances' keys may not delete (README: backup credentials);
that key is used here only, never given to a cluster. The timemachine Job writes each
dump to ``<prefix><job>.dump`` with the object metadata ``sha256`` (hex) and ``size`` (bytes); verification
reads the object back and compares. Calls have connect/read timeouts and a bounded number of retries; no
secret is ever logged (boto3's own loggers log no keys at their default levels, and this module logs none).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from core.messages import Message, msg
from instances.engine.credentials import (
    BackupCredentials,
    BackupCredentialsProvider,
    UnreadableCredentials,
    credentials_for,
    instance_prefix,
)
from instances.models import Instance

logger = logging.getLogger("instances.engine")
CHUNK = 1024 * 1024
_MISSING = {"404", "NoSuchKey", "NotFound"}
_DENIED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"}


class StorageError(Exception):
    """The storage could not be asked (no credentials, unreachable, access denied); ``reason`` says why."""

    def __init__(self, reason: Message):
        self.reason = reason
        super().__init__(reason.english)


@dataclass(frozen=True)
class Verification:
    """What reading a dump back found: ``ok``, or the ``reason`` it is not a backup one could restore."""

    key: str
    ok: bool
    reason: Message | None = None
    size: int | None = None
    sha256: str = ""


def dump_key(instance: Instance, job: str) -> str:
    """Where the timemachine Job ``job`` of ``instance`` uploads its dump."""
    return f"{instance_prefix(instance.slug)}{job}.dump"


def _config() -> Config:
    return Config(
        connect_timeout=settings.PORTAL_BACKUP_S3_CONNECT_TIMEOUT,
        read_timeout=settings.PORTAL_BACKUP_S3_READ_TIMEOUT,
        retries={"max_attempts": settings.PORTAL_BACKUP_S3_ATTEMPTS, "mode": "standard"},
        signature_version="s3v4",
    )


def _credentials(instance: Instance) -> BackupCredentials:
    try:
        credentials = credentials_for(instance)
    except UnreadableCredentials as error:
        reason = Message(msg("its storage credentials cannot be read: %(detail)s"), {"detail": str(error)})
        raise StorageError(reason) from None
    if credentials is None:
        raise StorageError(Message(msg("the instance has no backup storage credentials of its own")))
    return credentials


def client_for(credentials: BackupCredentials):
    """A boto3 S3 client with the given credentials, timeouts and bounded retries."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=credentials.endpoint or None,
        region_name=credentials.region or "us-east-1",
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        config=_config(),
    )


def _failure(error: Exception) -> Message:
    """The reason of a failed call, in words (the storage's own error code, never the request's headers)."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _DENIED:
            return Message(msg("the storage denied access with the instance's credentials (%(code)s)"), {"code": code})
        return Message(msg("the storage answered an error (%(code)s)"), {"code": code})
    return Message(msg("the storage cannot be reached: %(detail)s"), {"detail": type(error).__name__})


def verify(instance: Instance, key: str) -> Verification:
    """Read the dump ``key`` back: present, not empty, its size and SHA-256 those the Job recorded with it."""
    try:
        credentials = _credentials(instance)
    except StorageError as error:
        return Verification(key, False, error.reason)
    client = client_for(credentials)
    try:
        head = client.head_object(Bucket=credentials.bucket, Key=key)
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code", "")) in _MISSING:
            return Verification(key, False, Message(msg("its dump %(key)s is not in the storage"), {"key": key}))
        return Verification(key, False, _failure(error))
    except BotoCoreError as error:
        return Verification(key, False, _failure(error))
    length = int(head.get("ContentLength") or 0)
    metadata = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
    if length == 0:
        return Verification(key, False, Message(msg("its dump %(key)s is empty"), {"key": key}), size=0)
    recorded = metadata.get("sha256", "").strip().lower()
    if not recorded:
        return Verification(key, False, Message(msg("no checksum was recorded with its dump")), size=length)
    if metadata.get("size", "").strip() != str(length):
        reason = Message(
            msg("its dump has %(actual)s bytes, not the %(recorded)s bytes recorded"),
            {"actual": length, "recorded": metadata.get("size", "") or "?"},
        )
        return Verification(key, False, reason, size=length)
    digest = hashlib.sha256()
    try:
        body = client.get_object(Bucket=credentials.bucket, Key=key)["Body"]
        try:
            for chunk in body.iter_chunks(CHUNK):
                digest.update(chunk)
        finally:
            body.close()
    except (ClientError, BotoCoreError) as error:
        return Verification(key, False, _failure(error), size=length)
    actual = digest.hexdigest()
    if actual != recorded:
        reason = Message(msg("its dump's SHA-256 is not the one recorded: the object was altered or truncated"))
        return Verification(key, False, reason, size=length, sha256=actual)
    return Verification(key, True, size=length, sha256=actual)


def _deleting_credentials(instance: Instance) -> BackupCredentials:
    """The portal's own key at the instance's storage; the instance's key when the portal has none (a storage
    whose instance keys may delete, like the sandbox's)."""
    key, secret = settings.PORTAL_BACKUP_S3_ACCESS_KEY_ID, settings.PORTAL_BACKUP_S3_SECRET_ACCESS_KEY
    if key and secret:
        return BackupCredentialsProvider.storage(instance, key, secret)
    return _credentials(instance)


def delete(instance: Instance, key: str) -> None:
    """Delete the dump ``key`` (an absent object is not an error); raises :class:`StorageError` on failure."""
    credentials = _deleting_credentials(instance)
    try:
        client_for(credentials).delete_object(Bucket=credentials.bucket, Key=key)
    except (ClientError, BotoCoreError) as error:
        raise StorageError(_failure(error)) from None


def signed_url(instance: Instance, key: str, seconds: int | None = None) -> str:
    """A presigned GET of ``key``, valid ``seconds`` (``PORTAL_BACKUP_DOWNLOAD_SECONDS``); signed locally."""
    credentials = _credentials(instance)
    try:
        return client_for(credentials).generate_presigned_url(
            "get_object",
            Params={"Bucket": credentials.bucket, "Key": key},
            ExpiresIn=seconds or settings.PORTAL_BACKUP_DOWNLOAD_SECONDS,
        )
    except (ClientError, BotoCoreError) as error:
        raise StorageError(_failure(error)) from None
