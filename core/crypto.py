"""Encryption at rest for secrets the portal must keep (cluster kubeconfigs).

Keys come from ``PORTAL_ENCRYPTION_KEYS`` (comma-separated Fernet keys, newest first, so a key can be rotated),
or are derived from ``SECRET_KEY`` when none is given (development): changing the secret key then makes
stored kubeconfigs unreadable, which is why production should set its own keys.
"""

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "fernet:"


@functools.cache
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"saas-portal", info=b"encryption-at-rest").derive(
            secret_key.encode()
        )
        keys = (base64.urlsafe_b64encode(derived).decode(),)
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured("PORTAL_ENCRYPTION_KEYS must hold Fernet keys (32 url-safe base64 bytes).") from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.PORTAL_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(value: str) -> str:
    return PREFIX + fernet().encrypt(value.encode()).decode()


def decrypt(value: str) -> str:
    if not value.startswith(PREFIX):
        raise ValueError("not an encrypted value")
    try:
        return fernet().decrypt(value[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise ValueError("cannot decrypt: the encryption keys changed") from exc


class UnreadableSecret:
    """A stored secret the current keys cannot decrypt (they changed since it was stored).

    Loading its row does not fail, so that one lost key does not break every page and job that lists such rows;
    what needs the plain text fails there with ``reason``; saving the row keeps the ciphertext as it was, so that
    restoring the old key brings it back.
    """

    reason = "cannot decrypt: the encryption keys changed"

    def __init__(self, ciphertext: str):
        self.ciphertext = ciphertext

    def __repr__(self) -> str:
        return "<UnreadableSecret>"


class EncryptedTextField(models.TextField):
    """A text column stored encrypted; Python code sees the plain text (or an :class:`UnreadableSecret`), the
    database only ciphertext."""

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        try:
            return decrypt(value)
        except ValueError:
            return UnreadableSecret(value)

    def get_prep_value(self, value):
        if isinstance(value, UnreadableSecret):
            return value.ciphertext
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(value)
