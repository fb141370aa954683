"""QuayClient against a fake Quay (API v1): tag pages, what each tag carries, and the scan of its manifest."""

import datetime

import pytest

from registry.choices import ScanStatus
from registry.clients.errors import MalformedAnswer
from registry.clients.quay import QuayClient
from tests.registry.fake_registries import FakeRegistry, Vulnerability, quay_security

TOKEN = "quay-oauth-token-0123456789"
REPOSITORY = "acme/smile"


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def no_retry(seconds: float) -> None:
    """The client's sleep in these tests: the fake answers well, so any retry is a failure."""
    pytest.fail(f"unexpected retry (wait of {seconds}s)")


@pytest.fixture
def fake():
    with FakeRegistry() as server:
        server.bearer = TOKEN
        yield server


@pytest.fixture
def client(fake):
    return QuayClient(fake.url, secret=TOKEN, timeout=(2.0, 5.0), sleep=no_retry)


def by_name(tags):
    return {tag.tag: tag for tag in tags}


def test_tags_over_three_pages(fake, client):
    fake.max_page_size = 2  # five tags: pages of 2, 2 and 1
    for n in range(5):
        fake.add_quay_tag(REPOSITORY, f"1.{n}", digest(n))
    fake.add_quay_tag(REPOSITORY, "expired", digest(99), active=False)

    tags = client.tags(REPOSITORY)

    assert [t.tag for t in tags] == ["1.0", "1.1", "1.2", "1.3", "1.4"]
    assert [t.digest for t in tags] == [digest(n) for n in range(5)]
    listings = fake.received("/api/v1/repository/acme/smile/tag/")
    assert [r.query["page"] for r in listings] == ["1", "2", "3"]
    assert {(r.query["onlyActiveTags"], r.query["limit"]) for r in listings} == {("true", "100")}


def test_pagination_that_never_ends_is_refused(fake, client, settings):
    settings.PORTAL_REGISTRY_MAX_PAGES = 2
    fake.max_page_size = 1
    for n in range(3):
        fake.add_quay_tag(REPOSITORY, f"1.{n}", digest(n))

    with pytest.raises(MalformedAnswer, match="pagination does not end"):
        client.tags(REPOSITORY)
    assert len(fake.received("*/tag/")) == 2


def test_pushed_at_and_size(fake, client):
    pushed = datetime.datetime(2024, 7, 14, 8, 30, 15, tzinfo=datetime.UTC)
    fake.add_quay_tag(REPOSITORY, "1.2.4", digest(1), last_modified=pushed, size=48_123_456)
    fake.add_quay_tag(REPOSITORY, "unsized", digest(2), size=None)

    tags = by_name(client.tags(REPOSITORY))

    assert tags["1.2.4"].pushed_at == pushed
    # Quay writes "-0000": the date is read as UTC, not as a naive time the portal would take for Paris time.
    assert tags["1.2.4"].pushed_at.utcoffset() == datetime.timedelta(0)
    assert tags["1.2.4"].size == 48_123_456
    assert tags["unsized"].size is None


def test_scan_passed_counts_by_severity(fake, client):
    findings = [Vulnerability("CVE-2024-0001", "High"), Vulnerability("CVE-2024-0002", "Low", package="zlib1g")]
    fake.add_quay_tag(REPOSITORY, "1.0", digest(1), security=quay_security("scanned", findings))

    (tag,) = client.tags(REPOSITORY)

    assert tag.scan.status == ScanStatus.PASSED
    assert tag.scan.counts == {"high": 1, "low": 1}
    assert tag.scan.vulnerabilities == (("CVE-2024-0001", "high"), ("CVE-2024-0002", "low"))
    (security,) = fake.received(f"/api/v1/repository/acme/smile/manifest/{digest(1)}/security")
    assert security.query == {"vulnerabilities": "true"}


def test_scan_failed_lists_critical_and_counts_a_cve_once(fake, client):
    findings = [
        Vulnerability("CVE-2024-9999", "Critical", package="libssl3"),
        Vulnerability("CVE-2024-9999", "Critical", package="openssl"),  # one CVE, two packages
        Vulnerability("CVE-2023-4444", "Defcon1", package="glibc"),  # Quay's name above critical
        Vulnerability("CVE-2024-0003", "Medium", package="curl"),
        Vulnerability("CVE-2024-0004", "Medium", package="curl"),
        Vulnerability("CVE-2024-0005", "Negligible", package="tar"),
    ]
    fake.add_quay_tag(REPOSITORY, "1.0", digest(1), security=quay_security("scanned", findings))

    (tag,) = client.tags(REPOSITORY)

    assert tag.scan.status == ScanStatus.FAILED
    assert tag.scan.counts == {"critical": 2, "medium": 2, "negligible": 1}
    critical = [vid for vid, severity in tag.scan.vulnerabilities if severity == "critical"]
    assert critical == ["CVE-2023-4444", "CVE-2024-9999"]
    assert tag.scan.vulnerabilities[0][1] == "critical"  # most serious first
    assert tag.scan.vulnerabilities[-1] == ("CVE-2024-0005", "negligible")


def test_fail_severity_setting_moves_the_threshold(fake, client, settings):
    findings = [Vulnerability("CVE-2024-0001", "High")]
    fake.add_quay_tag(REPOSITORY, "1.0", digest(1), security=quay_security("scanned", findings))

    assert client.tags(REPOSITORY)[0].scan.status == ScanStatus.PASSED
    settings.PORTAL_REGISTRY_FAIL_SEVERITY = "high"
    assert client.tags(REPOSITORY)[0].scan.status == ScanStatus.FAILED


def test_scan_statuses_other_than_scanned(fake, client):
    fake.add_quay_tag(REPOSITORY, "queued", digest(1), security=quay_security("queued"))
    fake.add_quay_tag(REPOSITORY, "unsupported", digest(2), security=quay_security("unsupported"))
    fake.add_quay_tag(REPOSITORY, "failed", digest(3), security=quay_security("failed"))
    fake.add_quay_tag(REPOSITORY, "clean", digest(4), security=quay_security("scanned", []))

    tags = by_name(client.tags(REPOSITORY))

    assert tags["queued"].scan.status == ScanStatus.PENDING
    assert tags["unsupported"].scan.status == ScanStatus.NOT_SCANNED
    assert tags["failed"].scan.status == ScanStatus.UNKNOWN
    assert tags["clean"].scan.status == ScanStatus.PASSED
    assert all(not t.scan.counts and not t.scan.vulnerabilities for t in tags.values())


def test_manifest_unknown_to_the_scanner_is_not_scanned(fake, client):
    fake.add_quay_tag(REPOSITORY, "1.0", digest(1))
    fake.quay_scans[digest(1)] = None  # the security endpoint answers 404

    (tag,) = client.tags(REPOSITORY)

    assert tag.digest == digest(1)
    assert tag.scan.status == ScanStatus.NOT_SCANNED


def test_bearer_token_sent_on_every_call(fake, client):
    fake.add_quay_tag(REPOSITORY, "1.0", digest(1))
    fake.add_quay_tag(REPOSITORY, "1.1", digest(2))

    client.tags(REPOSITORY)

    assert len(fake.requests) == 3  # the tag list and two security reports
    assert {r.headers.get("authorization") for r in fake.requests} == {f"Bearer {TOKEN}"}
    assert client.calls == 3


def test_digest_of_one_tag(fake, client):
    fake.add_quay_tag(REPOSITORY, "1.0", digest(1))
    fake.add_quay_tag(REPOSITORY, "1.1", digest(2))

    assert client.digest(REPOSITORY, "1.1") == digest(2)
    assert client.digest(REPOSITORY, "9.9") is None
