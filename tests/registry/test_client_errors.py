"""How the registry clients fail: refused credentials, unknown repositories, retries of 429/5xx (and their waits),
unreadable answers, timeouts and refused connections, against the fake registries; then the helpers of
``registry.clients.base`` and ``Severity.normalise`` on their own."""

import dataclasses
import datetime
import email.utils
import logging
import socket
import time

import pytest
import requests

from registry.choices import ScanStatus, Severity
from registry.clients.base import RegistryClient, next_link, parse_challenge, retry_after
from registry.clients.errors import (
    MalformedAnswer,
    RegistryUnauthorised,
    RegistryUnavailable,
    RegistryUnreachable,
    RepositoryNotFound,
)
from registry.clients.harbor import HarborClient
from registry.clients.quay import QuayClient
from tests.registry.fake_registries import (
    FakeRegistry,
    Fault,
    HarborScan,
    Vulnerability,
    harbor_path,
    quay_path,
    quay_security,
)

TOKEN = "quay-oauth-token-0123456789"
ROBOT = "robot$portal"
SECRET = "harbor-robot-secret-0123456789"
WRONG = "a-wrong-secret-9876543210"
DIGEST = "sha256:" + "ab" * 32
FINDING = Vulnerability("CVE-2024-0001", "Low")


@dataclasses.dataclass
class Target:
    """One kind of registry behind the fake, with one repository holding one tag whose scan found one Low CVE.

    A successful ``tags()`` makes two requests: the listing (``listing``, where faults are injected) and the scan
    report (``report``).
    """

    kind: str
    fake: FakeRegistry
    repository: str
    listing: str
    report: str
    waits: list = dataclasses.field(default_factory=list)

    def client(self, *, secret: str | None = None, url: str | None = None, **options) -> RegistryClient:
        options = {"timeout": (2.0, 5.0), "retries": 3, "max_wait": 10.0, "sleep": self.waits.append, **options}
        if self.kind == "quay":
            return QuayClient(url or self.fake.url, secret=secret or TOKEN, **options)
        return HarborClient(url or self.fake.url, username=ROBOT, secret=secret or SECRET, **options)


@pytest.fixture(params=["quay", "harbor"])
def target(request):
    with FakeRegistry() as fake:
        if request.param == "quay":
            fake.bearer = TOKEN
            fake.add_quay_tag("acme/smile", "1.0", DIGEST, security=quay_security("scanned", [FINDING]))
            listing = quay_path("acme/smile")
            report = f"/api/v1/repository/acme/smile/manifest/{DIGEST}/security"
            yield Target("quay", fake, "acme/smile", listing, report)
        else:
            fake.basic = (ROBOT, SECRET)
            fake.add_harbor_artifact("library/smile", DIGEST, tags=["1.0"], scan=HarborScan("Success", (FINDING,)))
            listing = harbor_path("library/smile")
            yield Target("harbor", fake, "library/smile", listing, f"{listing}/{DIGEST}/additions/vulnerabilities")


def assert_no_credential(error: Exception) -> None:
    """The message of an error is shown on pages and stored: it must hold none of the credentials."""
    message = f"{error} {error!r} {error.detail}"
    for credential in (TOKEN, SECRET, WRONG):
        assert credential not in message


def assert_synced(tags) -> None:
    assert [(t.tag, t.digest) for t in tags] == [("1.0", DIGEST)]
    assert tags[0].scan.status == ScanStatus.PASSED
    assert tags[0].scan.counts == {"low": 1}


def test_the_target_syncs_without_fault(target):
    client = target.client()

    assert_synced(client.tags(target.repository))
    assert [r.path for r in target.fake.requests] == [target.listing, target.report]
    assert client.calls == 2
    assert target.waits == []


# --- refused credentials, unknown repositories ---------------------------------------------------------------


def test_wrong_credentials_are_unauthorised(target):
    client = target.client(secret=WRONG)

    with pytest.raises(RegistryUnauthorised, match="HTTP 401") as caught:
        client.tags(target.repository)

    assert client.calls == 1  # a 401 is not retried
    assert target.waits == []
    assert_no_credential(caught.value)


@pytest.mark.parametrize("status", [401, 403])
def test_refusal_of_the_scan_report_is_unauthorised(target, status):
    target.fake.inject(target.report, Fault(status=status))

    with pytest.raises(RegistryUnauthorised, match=f"HTTP {status}") as caught:
        target.client().tags(target.repository)

    assert [r.path for r in target.fake.requests] == [target.listing, target.report]
    assert_no_credential(caught.value)


def test_unknown_repository_is_not_found(target):
    repository = "acme/no-such-repository" if target.kind == "quay" else "library/no-such-repository"
    client = target.client()

    with pytest.raises(RepositoryNotFound, match="no-such-repository") as caught:
        client.tags(repository)

    assert client.calls == 1
    assert_no_credential(caught.value)


def test_unknown_harbor_project_is_not_found():
    with FakeRegistry() as fake:
        fake.add_harbor_artifact("library/smile", DIGEST, tags=["1.0"])
        client = HarborClient(fake.url, username=ROBOT, secret=SECRET, sleep=pytest.fail)

        with pytest.raises(RepositoryNotFound, match="no-such-project/app"):
            client.tags("no-such-project/app")
        with pytest.raises(RepositoryNotFound, match="project/repository"):
            client.tags("no-slash")  # no project part: not even asked

        assert [r.path for r in fake.requests] == ["/api/v2.0/projects/no-such-project/repositories/app/artifacts"]


# --- retries -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "waits"),
    [
        pytest.param([Fault(status=503, retry_after="2")], [2.0], id="503-retry-after-2"),
        pytest.param([Fault(status=500), Fault(status=502)], [0.5, 1.0], id="500-502-backoff"),
        pytest.param([Fault(status=504), Fault(status=503), Fault(status=500)], [0.5, 1.0, 2.0], id="backoff-x3"),
        pytest.param([Fault(status=429, retry_after="1")], [1.0], id="429-retry-after-1"),
        pytest.param([Fault(status=429, retry_after="0")], [0.0], id="429-retry-after-0"),
    ],
)
def test_server_errors_then_success(target, faults, waits):
    target.fake.inject(target.listing, *faults)
    client = target.client()

    assert_synced(client.tags(target.repository))

    assert target.waits == waits
    assert client.calls == 2 + len(faults)
    assert len(target.fake.received(target.listing)) == 1 + len(faults)


def test_retries_of_the_scan_report(target):
    target.fake.inject(target.report, Fault(status=503, retry_after="3"))
    client = target.client()

    assert_synced(client.tags(target.repository))

    assert target.waits == [3.0]
    assert [r.path for r in target.fake.requests] == [target.listing, target.report, target.report]


def test_server_errors_until_failure_are_unavailable(target, caplog):
    target.fake.inject(target.listing, *[Fault(status=503)] * 10)
    client = target.client(retries=2)

    with (
        caplog.at_level(logging.INFO, logger="registry.clients.base"),
        pytest.raises(RegistryUnavailable, match=r"HTTP 503 .* after 3 attempts") as caught,
    ):
        client.tags(target.repository)

    assert client.calls == 3
    assert len(target.fake.requests) == 3
    assert target.waits == [0.5, 1.0]
    assert_no_credential(caught.value)
    assert len(caplog.records) == 2  # one line per retry...
    assert all(TOKEN not in r.getMessage() and SECRET not in r.getMessage() for r in caplog.records)  # ...no secret


def test_no_retry_at_all(target):
    target.fake.inject(target.listing, Fault(status=500))
    client = target.client(retries=0)

    with pytest.raises(RegistryUnavailable):
        client.tags(target.repository)

    assert client.calls == 1
    assert target.waits == []


def test_retry_after_beyond_max_wait_is_capped(target):
    target.fake.inject(target.listing, Fault(status=429, retry_after="120"), Fault(status=429, retry_after="3"))
    client = target.client(max_wait=5.0)

    assert_synced(client.tags(target.repository))

    assert target.waits == [5.0, 3.0]


def test_retry_after_as_an_http_date(target):
    when = email.utils.formatdate(time.time() + 3, usegmt=True)  # whole seconds: between 2 and 3 s from now
    target.fake.inject(target.listing, Fault(status=503, retry_after=when))
    client = target.client()

    assert_synced(client.tags(target.repository))

    (wait,) = target.waits
    assert 1.5 < wait <= 3.0


def test_unreadable_retry_after_falls_back_to_the_backoff(target):
    target.fake.inject(target.listing, Fault(status=503, retry_after="soon"), Fault(status=503, retry_after="-4"))
    client = target.client()

    assert_synced(client.tags(target.repository))

    assert target.waits == [0.5, 1.0]


# --- unreadable answers, timeouts, refused connections ---------------------------------------------------------


@pytest.mark.parametrize("where", ["listing", "report"])
def test_malformed_json(target, where):
    target.fake.inject(getattr(target, where), Fault(malformed=True))
    client = target.client()

    with pytest.raises(MalformedAnswer, match="not JSON") as caught:
        client.tags(target.repository)

    assert target.waits == []  # an unreadable answer is not retried
    assert client.calls == (1 if where == "listing" else 2)
    assert_no_credential(caught.value)


def test_timeout_is_unreachable(target):
    target.fake.inject(target.listing, Fault(delay=2.0))
    client = target.client(timeout=(2.0, 0.5))

    started = time.monotonic()
    with pytest.raises(RegistryUnreachable, match=r"no answer within 0\.5s") as caught:
        client.tags(target.repository)

    assert time.monotonic() - started < 1.8  # the client gave up before the server answered
    assert client.calls == 1
    assert len(target.fake.requests) == 1
    assert_no_credential(caught.value)


def test_a_delay_within_the_timeout_is_waited_for(target):
    target.fake.inject(target.listing, Fault(delay=0.2))

    assert_synced(target.client(timeout=(2.0, 1.0)).tags(target.repository))


def test_connection_refused_is_unreachable(target):
    with socket.socket() as sock:  # a port that was free a moment ago, now with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = target.client(url=f"http://127.0.0.1:{port}")

    with pytest.raises(RegistryUnreachable, match="ConnectionError") as caught:
        client.tags(target.repository)

    assert client.calls == 1
    assert target.waits == []
    assert_no_credential(caught.value)


# --- helpers of base.py --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-1", None),
        ("1.5", None),
        ("\u00b2", None),  # a digit to str.isdigit(), not to float()
    ],
)
def test_retry_after_values(value, expected):
    assert retry_after(value) == expected


def test_retry_after_http_dates():
    now = datetime.datetime(2015, 10, 21, 7, 27, 30, tzinfo=datetime.UTC).timestamp()

    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 30.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 -0000", now=now) == 30.0  # no zone: UTC
    assert retry_after("Wed, 21 Oct 2015 09:28:00 +0200", now=now) == 30.0
    assert retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now=now) == 0.0  # past: no wait
    assert retry_after("Wed, 32 Oct 2015 07:28:00 GMT", now=now) is None


def test_parse_challenge():
    header = (
        'Bearer realm="https://quay.example.org/v2/auth",service="quay.example.org",scope="repository:acme/smile:pull"'
    )

    assert parse_challenge(header) == (
        "bearer",
        {
            "realm": "https://quay.example.org/v2/auth",
            "service": "quay.example.org",
            "scope": "repository:acme/smile:pull",
        },
    )
    assert parse_challenge('Basic realm="Harbor"') == ("basic", {"realm": "Harbor"})
    assert parse_challenge("  BEARER  ") == ("bearer", {})
    assert parse_challenge("") == ("", {})


def answer(url: str, link: str | None) -> requests.Response:
    response = requests.Response()
    response.url = url
    if link is not None:
        response.headers["Link"] = link
    return response


def test_next_link():
    url = "https://harbor.example.org/api/v2.0/projects/library/repositories/smile/artifacts?page=2&page_size=2"
    base = "/api/v2.0/projects/library/repositories/smile/artifacts"
    both = f'<{base}?page=1&page_size=2>; rel="prev" , <{base}?page=3&page_size=2>; rel="next"'

    assert next_link(answer(url, both)) == f"https://harbor.example.org{base}?page=3&page_size=2"
    assert next_link(answer(url, f'<{base}?page=1&page_size=2>; rel="prev"')) is None  # the last page
    assert next_link(answer(url, None)) is None
    # Distribution's form: relative to the registry, rel without quotes.
    assert next_link(answer("https://r.example.org/v2/a/tags/list?n=2", "</v2/a/tags/list?n=2&last=b>; rel=next")) == (
        "https://r.example.org/v2/a/tags/list?n=2&last=b"
    )
    assert (
        next_link(answer(url, '<https://other.example.org/page/3>; rel="next"')) == "https://other.example.org/page/3"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Critical", Severity.CRITICAL),
        ("CRITICAL", Severity.CRITICAL),
        ("Defcon1", Severity.CRITICAL),
        (" High ", Severity.HIGH),
        ("Medium", Severity.MEDIUM),
        ("Low", Severity.LOW),
        ("Negligible", Severity.NEGLIGIBLE),
        ("None", Severity.NEGLIGIBLE),  # Harbor's lowest
        ("Unknown", Severity.UNKNOWN),
        ("", Severity.UNKNOWN),
        (None, Severity.UNKNOWN),
        ("moderate", Severity.UNKNOWN),
    ],
)
def test_severity_normalise(name, expected):
    assert Severity.normalise(name) == expected
