"""What a failed cluster call becomes: a transient error (worth retrying later) or a permanent one.

Messages name the call, the object, the HTTP status and the API server's reason, and never carry request bodies,
Secret values or credentials; the original exception is not chained for the same reason.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re

import urllib3
from kubernetes.client.exceptions import ApiException

_BEARER = re.compile(r"(?i)bearer\s+\S+")
MAX_MESSAGE = 500
# What the transport may raise besides the API server's own answers.
TRANSPORT_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError)


class ClusterError(Exception):
    """A cluster call failed; ``status`` is the HTTP status when the API server answered."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = ""):
        super().__init__(message)
        self.message, self.status, self.reason = message, status, reason


class TransientClusterError(ClusterError):
    """Worth retrying later: conflict, throttling, server error, timeout, unreachable cluster."""


class PermanentClusterError(ClusterError):
    """Retrying will not help: the request or the configuration is wrong."""


class WatchExpired(Exception):
    """The API server no longer has the resourceVersion a watch started from (410 Gone): list again."""


def secret_values(manifest: dict) -> list[str]:
    """The values of a Secret manifest (and their decoded forms), to be blanked out of any message."""
    if manifest.get("kind") != "Secret":
        return []
    values = [str(v) for v in (manifest.get("stringData") or {}).values()]
    for encoded in (manifest.get("data") or {}).values():
        values.append(str(encoded))
        with contextlib.suppress(binascii.Error, UnicodeDecodeError):
            values.append(base64.b64decode(str(encoded), validate=True).decode())
    return [v for v in values if len(v) >= 3]


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` without the given secrets and bearer tokens, cut to a readable length."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    text = _BEARER.sub("Bearer [redacted]", text)
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"


def classify(error: Exception, action: str, secrets: list[str] | None = None) -> ClusterError:
    """Turn a client/transport exception into a Transient- or PermanentClusterError with a safe message."""
    secrets = secrets or []
    if isinstance(error, ApiException):
        status = error.status or 0
        reason, message = error.reason or "", ""
        try:
            body = json.loads(error.body or "{}")
            reason, message = body.get("reason") or reason, body.get("message") or ""
        except (TypeError, ValueError, AttributeError):
            pass
        text = scrub(f"{action}: HTTP {status} {reason}" + (f": {message}" if message else ""), secrets)
        transient = status in (408, 409, 429) or status >= 500
        return (TransientClusterError if transient else PermanentClusterError)(text, status=status, reason=reason)
    cause = getattr(error, "reason", None) if isinstance(error, urllib3.exceptions.MaxRetryError) else error
    detail = f"{type(cause).__name__}: {cause}" if cause is not None else type(error).__name__
    text = scrub(f"{action}: cannot talk to the cluster ({detail})", secrets)
    if isinstance(cause, urllib3.exceptions.SSLError):
        return PermanentClusterError(text)  # a certificate problem does not fix itself
    return TransientClusterError(text)
