"""What every registry client shares: an HTTP session with timeouts, retries that honour ``Retry-After``, the
authentication schemes (basic, bearer, the Distribution token challenge), pagination through ``Link`` headers,
and the translation of every failure into a :class:`~registry.clients.errors.RegistryError`.
"""

from __future__ import annotations

import dataclasses
import datetime
import email.utils
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin

import requests
from django.conf import settings

from registry.choices import ScanStatus, Severity
from registry.clients.errors import (
    MalformedAnswer,
    RegistryError,
    RegistryUnauthorised,
    RegistryUnavailable,
    RegistryUnreachable,
    RepositoryNotFound,
)

logger = logging.getLogger(__name__)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@dataclasses.dataclass(frozen=True)
class Scan:
    """What a scanner reported for one image: its status, counts by severity and the vulnerabilities found."""

    status: str = ScanStatus.NOT_SCANNED
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    vulnerabilities: tuple[tuple[str, str], ...] = ()  # (id, severity), most serious first

    @classmethod
    def from_findings(cls, findings: list[tuple[str, str]]) -> Scan:
        """A completed scan from (id, severity name) pairs; a CVE found in several packages counts once, at its
        worst severity."""
        worst: dict[str, str] = {}
        for vid, name in findings:
            severity = Severity.normalise(name)
            if vid and Severity.rank(severity) >= Severity.rank(worst.get(vid, Severity.UNKNOWN)):
                worst[vid] = severity
        unique = set(worst.items())
        counts: dict[str, int] = {}
        for _vid, severity in unique:
            counts[severity] = counts.get(severity, 0) + 1
        ordered = sorted(unique, key=lambda item: (-Severity.rank(item[1]), item[0]))
        return cls(status=judge(counts), counts=counts, vulnerabilities=tuple(ordered))


def judge(counts: dict[str, int]) -> str:
    """Passed or failed: whether any vulnerability reaches ``PORTAL_REGISTRY_FAIL_SEVERITY``."""
    threshold = Severity.rank(settings.PORTAL_REGISTRY_FAIL_SEVERITY)
    serious = any(n for severity, n in counts.items() if Severity.rank(severity) >= threshold)
    return ScanStatus.FAILED if serious else ScanStatus.PASSED


@dataclasses.dataclass(frozen=True)
class RemoteTag:
    """A tag as a registry reports it."""

    tag: str
    digest: str
    pushed_at: datetime.datetime | None = None
    size: int | None = None
    scan: Scan = dataclasses.field(default_factory=Scan)


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…"`` -> ("bearer", {"realm": …, "service": …})."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest))


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay in seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() also accepts "²", which float() refuses
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def next_link(response: requests.Response) -> str | None:
    """The ``rel="next"`` URL of a paginated answer, made absolute."""
    match = _LINK_NEXT.search(response.headers.get("Link", ""))
    return urljoin(response.url, match.group(1)) if match else None


class RegistryClient:
    """Base of the registry clients. Subclasses implement :meth:`tags` (and may override :meth:`digest`).

    Every call has a (connect, read) timeout; 429 and 5xx answers are retried ``retries`` times, waiting what
    ``Retry-After`` asks (at most ``max_wait`` seconds) or an exponential backoff. ``sleep`` is injectable so that
    tests see the waits without spending them.
    """

    kind = ""

    def __init__(
        self,
        url: str,
        *,
        username: str = "",
        secret: str = "",
        verify: bool = True,
        timeout: tuple[float, float] = (5.0, 20.0),
        retries: int = 3,
        max_wait: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.url = url.rstrip("/") + "/"
        self.username = username
        self.secret = secret
        self.timeout = timeout
        self.retries = retries
        self.max_wait = max_wait
        self.sleep = sleep
        self.session = requests.Session()
        self.session.verify = verify
        self.session.headers["User-Agent"] = "saas-portal-registry/1"
        self._tokens: dict[tuple[str, str], str] = {}  # (realm, scope) -> bearer token of the token challenge
        self.calls = 0

    @classmethod
    def for_registry(cls, registry, **options) -> RegistryClient:
        from core.crypto import UnreadableSecret

        if isinstance(registry.secret, UnreadableSecret):
            raise RegistryUnauthorised(UnreadableSecret.reason)
        options.setdefault("timeout", (settings.PORTAL_REGISTRY_CONNECT_TIMEOUT, settings.PORTAL_REGISTRY_READ_TIMEOUT))
        options.setdefault("retries", settings.PORTAL_REGISTRY_RETRIES)
        options.setdefault("max_wait", settings.PORTAL_REGISTRY_MAX_RETRY_WAIT)
        return cls(
            registry.url, username=registry.username, secret=registry.secret, verify=registry.verify_tls, **options
        )

    # --- what subclasses provide ----------------------------------------------------------------------------

    def tags(self, repository: str) -> list[RemoteTag]:
        """Every tag of ``repository`` with its digest (and what the registry knows of its push and scan)."""
        raise NotImplementedError

    def digest(self, repository: str, tag: str) -> str | None:
        """The digest ``tag`` points to, or None when the tag does not exist (the CI guard's question)."""
        for remote in self.tags(repository):
            if remote.tag == tag:
                return remote.digest
        return None

    # --- HTTP -----------------------------------------------------------------------------------------------

    def _auth_headers(self, url: str, scope_key: str) -> dict[str, str]:
        token = self._tokens.get(scope_key)
        if token:
            return {"Authorization": f"Bearer {token}"}
        if self.username:
            return {}  # basic auth goes through requests' auth argument
        if self.secret:
            return {"Authorization": f"Bearer {self.secret}"}
        return {}

    def request(self, method: str, url: str, *, repository: str = "", **kwargs) -> requests.Response:
        """One logical call: retried on 429/5xx, re-sent once with a token after a Distribution challenge.

        Answers 401/403 raise :class:`RegistryUnauthorised`, 404 :class:`RepositoryNotFound` unless the caller
        lists 404 in ``ok``.
        """
        ok = set(kwargs.pop("ok", ()))
        base_headers = kwargs.pop("headers", None) or {}
        url = urljoin(self.url, url)
        scope_key = ("", repository)
        challenged = False
        attempt = 0
        while True:
            headers = {**base_headers, **self._auth_headers(url, scope_key)}
            auth = (self.username, self.secret) if self.username and "Authorization" not in headers else None
            response = self._send(method, url, headers=headers, auth=auth, **kwargs)
            if response.status_code == 401 and not challenged:
                scheme, params = parse_challenge(response.headers.get("WWW-Authenticate", ""))
                if scheme == "bearer" and params.get("realm"):
                    challenged = True
                    self._tokens[scope_key] = self._fetch_token(params)
                    continue
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                attempt += 1
                wait = retry_after(response.headers.get("Retry-After"))
                if wait is None:
                    wait = 0.5 * 2 ** (attempt - 1)
                logger.info("registry %s answered %s; retry %d in %.1fs", url, response.status_code, attempt, wait)
                self.sleep(min(wait, self.max_wait))
                continue
            break
        status = response.status_code
        if status in ok or 200 <= status < 300:
            return response
        if status in (401, 403):
            raise RegistryUnauthorised(f"HTTP {status} from {url}")
        if status == 404:
            raise RepositoryNotFound(repository or url)
        if status in RETRY_STATUSES:
            raise RegistryUnavailable(f"HTTP {status} from {url} after {self.retries + 1} attempts")
        raise RegistryError(f"HTTP {status} from {url}")

    def _send(self, method: str, url: str, **kwargs) -> requests.Response:
        self.calls += 1
        try:
            return self.session.request(method, url, timeout=self.timeout, allow_redirects=True, **kwargs)
        except requests.Timeout as exc:
            raise RegistryUnreachable(f"{url}: no answer within {self.timeout[1]:g}s") from exc
        except requests.exceptions.SSLError as exc:
            raise RegistryUnreachable(f"{url}: TLS verification failed") from exc
        except requests.RequestException as exc:
            raise RegistryUnreachable(f"{url}: {type(exc).__name__}") from exc

    def _fetch_token(self, params: dict[str, str]) -> str:
        """Answer a ``WWW-Authenticate: Bearer realm=…`` challenge: ask the realm for a token for the scope."""
        query = {key: params[key] for key in ("service", "scope") if params.get(key)}
        auth = (self.username, self.secret) if self.username else None
        response = self._send("GET", params["realm"], params=query, auth=auth)
        if response.status_code in (401, 403):
            raise RegistryUnauthorised(f"the token server {params['realm']} refused the credentials")
        if response.status_code != 200:
            raise RegistryError(f"token server {params['realm']}: HTTP {response.status_code}")
        body = self.json(response)
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise MalformedAnswer(f"the token server {params['realm']} gave no token")
        return token

    @staticmethod
    def json(response: requests.Response) -> Any:
        try:
            return response.json()
        except (ValueError, json.JSONDecodeError) as exc:
            raise MalformedAnswer(f"{response.url}: not JSON") from exc

    def pages(self, url: str, *, repository: str, params: dict | None = None) -> Iterator[requests.Response]:
        """Follow ``Link: <…>; rel="next"`` from ``url`` (at most ``PORTAL_REGISTRY_MAX_PAGES`` pages)."""
        seen = set()
        while url:
            if url in seen or len(seen) >= settings.PORTAL_REGISTRY_MAX_PAGES:
                raise MalformedAnswer(f"{url}: pagination does not end")
            seen.add(url)
            response = self.request("GET", url, repository=repository, params=params)
            params = None  # the next link carries its own query
            yield response
            url = next_link(response)
