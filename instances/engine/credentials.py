"""Each instance's own backup storage credentials, and nobody else's.

An instance's backup Jobs upload with a key that the storage limits to the instance's prefix
(``instances/<slug>/``): whoever reads the instance's namespace can reach that instance's dumps and no other
university's. The portal's own key (``PORTAL_BACKUP_S3_ACCESS_KEY_ID``) never goes to a cluster.

Where the key comes from is a provider, chosen by ``PORTAL_BACKUP_CREDENTIALS_PROVIDER``. The default,
:class:`StaticCredentials`, gives the key a maintainer created at the storage and entered on the instance. A
provider that can create users at the storage (an admin API) would create one per instance in ``credentials``,
store it on the instance the same way, and return it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.module_loading import import_string

from core.crypto import UnreadableSecret
from instances.models import Instance

# Printable ASCII without spaces: the key pair is written as "name = value" lines of the AWS CLI's credentials
# file, where a line break would let a value add settings of its own.
_KEY = re.compile(r"^[\x21-\x7e]+\Z")


class UnreadableCredentials(Exception):
    """The instance's stored secret key cannot be decrypted (the portal's encryption keys changed)."""


def instance_prefix(slug: str) -> str:
    """Where an instance's dumps live in the bucket, and all its key may touch."""
    return f"instances/{slug}/"


def storage_port(endpoint: str) -> int:
    """The TCP port of the storage's endpoint URL (the one port the backup Jobs may open)."""
    parts = urlsplit(endpoint)
    try:
        port = parts.port
    except ValueError:
        port = None
    return port or (80 if parts.scheme == "http" else 443)


@dataclass(frozen=True)
class BackupCredentials:
    """Where and with which key one instance uploads its dumps."""

    endpoint: str
    bucket: str
    prefix: str
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)

    def __post_init__(self):
        for value in (self.access_key_id, self.secret_access_key):
            if not isinstance(value, str) or not _KEY.match(value):
                raise ValueError("backup storage keys must be printable characters without spaces or line breaks")

    def secret_data(self) -> dict[str, str]:
        """The files of the instance's Secret, as the timemachine Job reads them (see timemachine.yaml)."""
        data = {
            "endpoint": self.endpoint,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "credentials": (
                "[default]\n"
                f"aws_access_key_id = {self.access_key_id}\n"
                f"aws_secret_access_key = {self.secret_access_key}\n"
            ),
        }
        # Always written, empty when there is none: the timemachine reads it only when it is not empty, and the
        # CronJob of portals before 1.0 requires the key.
        data["region"] = self.region or ""
        # The same key under the names the timemachine CronJob of portals before 1.0 reads from the environment: an
        # instance applied by such a portal backs up with its own key until its next full apply replaces the
        # CronJob (the pre-upgrade backup runs before the new manifests are applied).
        data["access-key-id"] = self.access_key_id
        data["secret-access-key"] = self.secret_access_key
        return data


class BackupCredentialsProvider:
    """Gives an instance's own backup credentials (see the module docstring)."""

    def credentials(self, instance: Instance) -> BackupCredentials | None:
        """The instance's credentials, or None when it has none yet: its backups then fail, saying so.

        Raises :class:`UnreadableCredentials` when they exist but cannot be read.
        """
        raise NotImplementedError

    @staticmethod
    def storage(instance: Instance, access_key_id: str, secret_access_key: str) -> BackupCredentials:
        """Credentials at the portal's storage (endpoint, bucket, region) under the instance's prefix."""
        return BackupCredentials(
            endpoint=settings.PORTAL_BACKUP_S3_ENDPOINT,
            bucket=settings.PORTAL_BACKUP_S3_BUCKET,
            prefix=instance_prefix(instance.slug),
            region=settings.PORTAL_BACKUP_S3_REGION,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
        )


class StaticCredentials(BackupCredentialsProvider):
    """The key a maintainer created at the storage for this instance (a user that the storage's policy allows
    under the instance's prefix only, README "Backup credentials") and entered on the instance in the admin."""

    def credentials(self, instance: Instance) -> BackupCredentials | None:
        secret = instance.backup_secret_access_key
        if isinstance(secret, UnreadableSecret):
            raise UnreadableCredentials(secret.reason)
        if not instance.backup_access_key_id or not secret:
            return None
        return self.storage(instance, instance.backup_access_key_id, secret)


@functools.cache
def _provider(path: str) -> BackupCredentialsProvider:
    return import_string(path)()


def provider() -> BackupCredentialsProvider:
    """The configured provider (one instance per configured path)."""
    return _provider(settings.PORTAL_BACKUP_CREDENTIALS_PROVIDER)


def credentials_for(instance: Instance) -> BackupCredentials | None:
    """The instance's own backup credentials, or None (see ``BackupCredentialsProvider.credentials``)."""
    return provider().credentials(instance)
