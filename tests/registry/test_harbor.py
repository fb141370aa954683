"""HarborClient against a fake Harbor (API v2.0): artifact pages, tags, scan overviews and vulnerability reports."""

import base64
import datetime

import pytest

from registry.choices import ScanStatus
from registry.clients.errors import MalformedAnswer
from registry.clients.harbor import HarborClient
from tests.registry.fake_registries import FakeRegistry, HarborScan, Vulnerability

ROBOT = "robot$portal"
SECRET = "harbor-robot-secret-0123456789"
REPOSITORY = "library/smile"
ARTIFACTS = "/api/v2.0/projects/library/repositories/smile/artifacts"


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def no_retry(seconds: float) -> None:
    """The client's sleep in these tests: the fake answers well, so any retry is a failure."""
    pytest.fail(f"unexpected retry (wait of {seconds}s)")


@pytest.fixture
def fake():
    with FakeRegistry() as server:
        server.basic = (ROBOT, SECRET)
        yield server


@pytest.fixture
def client(fake):
    return HarborClient(fake.url, username=ROBOT, secret=SECRET, timeout=(2.0, 5.0), sleep=no_retry)


def by_name(tags):
    return {tag.tag: tag for tag in tags}


def vulnerability_calls(fake):
    return fake.received("*/additions/vulnerabilities")


def test_artifacts_over_three_pages_through_link(fake, client):
    fake.max_page_size = 2  # five artifacts: pages of 2, 2 and 1
    for n in range(5):
        fake.add_harbor_artifact(REPOSITORY, digest(n), tags=[f"1.{n}"])

    tags = client.tags(REPOSITORY)

    assert [(t.tag, t.digest) for t in tags] == [(f"1.{n}", digest(n)) for n in range(5)]
    listings = fake.received(ARTIFACTS)
    assert [r.query["page"] for r in listings] == ["1", "2", "3"]
    first = listings[0].query
    assert (first["with_tag"], first["with_scan_overview"], first["page_size"]) == ("true", "true", "100")
    # The next pages are the ones Harbor's Link named, with the query the first request set.
    assert all(r.query["with_scan_overview"] == "true" for r in listings)


def test_pagination_that_never_ends_is_refused(fake, client, settings):
    settings.PORTAL_REGISTRY_MAX_PAGES = 2
    fake.max_page_size = 1
    for n in range(3):
        fake.add_harbor_artifact(REPOSITORY, digest(n), tags=[f"1.{n}"])

    with pytest.raises(MalformedAnswer, match="pagination does not end"):
        client.tags(REPOSITORY)
    assert len(fake.received(ARTIFACTS)) == 2


def test_several_tags_on_one_artifact(fake, client):
    pushed = datetime.datetime(2024, 7, 14, 8, 30, 15, tzinfo=datetime.UTC)
    scan = HarborScan("Success", (Vulnerability("CVE-2024-9999", "Critical"),))
    fake.add_harbor_artifact(
        REPOSITORY, digest(1), tags=["1.2.4", "1.2", "latest"], push_time=pushed, size=52_000_000, scan=scan
    )
    fake.add_harbor_artifact(REPOSITORY, digest(2), tags=[])  # untagged: Harbor says "tags": null

    tags = client.tags(REPOSITORY)

    assert [t.tag for t in tags] == ["1.2.4", "1.2", "latest"]
    assert {t.digest for t in tags} == {digest(1)}
    assert {t.pushed_at for t in tags} == {pushed}
    assert {t.size for t in tags} == {52_000_000}
    assert {t.scan.status for t in tags} == {ScanStatus.FAILED}
    assert len(vulnerability_calls(fake)) == 1  # one report per artifact, not per tag


def test_success_with_findings_reads_the_vulnerability_report(fake, client):
    findings = (
        Vulnerability("CVE-2024-9999", "Critical", package="libssl3"),
        Vulnerability("CVE-2024-9999", "Critical", package="openssl"),  # one CVE in two packages
        Vulnerability("CVE-2024-0001", "High", package="curl"),
        Vulnerability("CVE-2024-0002", "None", package="tar"),  # Harbor's lowest severity
    )
    fake.add_harbor_artifact(REPOSITORY, digest(1), tags=["1.0"], scan=HarborScan("Success", findings))

    (tag,) = client.tags(REPOSITORY)

    assert tag.scan.status == ScanStatus.FAILED
    assert tag.scan.counts == {"critical": 1, "high": 1, "negligible": 1}
    assert tag.scan.vulnerabilities == (
        ("CVE-2024-9999", "critical"),
        ("CVE-2024-0001", "high"),
        ("CVE-2024-0002", "negligible"),
    )
    (report,) = vulnerability_calls(fake)
    assert report.path == f"{ARTIFACTS}/{digest(1)}/additions/vulnerabilities"


def test_success_without_findings_asks_for_no_report(fake, client):
    fake.add_harbor_artifact(REPOSITORY, digest(1), tags=["clean"], scan=HarborScan("Success", ()))
    fake.add_harbor_artifact(
        REPOSITORY, digest(2), tags=["high"], scan=HarborScan("Success", (Vulnerability("CVE-2024-0001", "High"),))
    )

    tags = by_name(client.tags(REPOSITORY))

    assert tags["clean"].scan.status == ScanStatus.PASSED
    assert tags["clean"].scan.counts == {}
    assert tags["high"].scan.status == ScanStatus.PASSED  # high is below the default threshold (critical)
    assert tags["high"].scan.counts == {"high": 1}
    assert [r.path for r in vulnerability_calls(fake)] == [f"{ARTIFACTS}/{digest(2)}/additions/vulnerabilities"]


@pytest.mark.parametrize(
    ("harbor_status", "expected"),
    [
        ("Pending", ScanStatus.PENDING),
        ("Running", ScanStatus.PENDING),
        ("Scheduled", ScanStatus.PENDING),
        ("Error", ScanStatus.UNKNOWN),
        ("Stopped", ScanStatus.UNKNOWN),
    ],
)
def test_scan_in_progress_or_in_error(fake, client, harbor_status, expected):
    fake.add_harbor_artifact(REPOSITORY, digest(1), tags=["1.0"], scan=HarborScan(harbor_status))

    (tag,) = client.tags(REPOSITORY)

    assert tag.scan.status == expected
    assert tag.scan.counts == {}
    assert vulnerability_calls(fake) == []


def test_no_scan_overview_is_not_scanned(fake, client):
    fake.add_harbor_artifact(REPOSITORY, digest(1), tags=["1.0"], scan=None)

    (tag,) = client.tags(REPOSITORY)

    assert tag.scan.status == ScanStatus.NOT_SCANNED
    assert vulnerability_calls(fake) == []


def test_basic_auth_sent(fake, client):
    fake.add_harbor_artifact(
        REPOSITORY, digest(1), tags=["1.0"], scan=HarborScan("Success", (Vulnerability("CVE-2024-0001", "Low"),))
    )

    client.tags(REPOSITORY)

    expected = "Basic " + base64.b64encode(f"{ROBOT}:{SECRET}".encode()).decode()
    assert len(fake.requests) == 2  # the artifact list and the vulnerability report
    assert {r.headers.get("authorization") for r in fake.requests} == {expected}


def test_nested_repository_is_encoded_twice(fake, client):
    scan = HarborScan("Success", (Vulnerability("CVE-2024-0001", "Medium"),))
    fake.add_harbor_artifact("project/team/app", digest(7), tags=["2.0"], scan=scan)

    (tag,) = client.tags("project/team/app")

    assert (tag.tag, tag.digest, tag.scan.counts) == ("2.0", digest(7), {"medium": 1})
    assert [r.path for r in fake.requests] == [
        "/api/v2.0/projects/project/repositories/team%252Fapp/artifacts",
        f"/api/v2.0/projects/project/repositories/team%252Fapp/artifacts/{digest(7)}/additions/vulnerabilities",
    ]


def test_digest_of_one_tag(fake, client):
    fake.add_harbor_artifact(REPOSITORY, digest(1), tags=["1.0", "stable"])
    fake.add_harbor_artifact(REPOSITORY, digest(2), tags=["1.1"])

    assert client.digest(REPOSITORY, "stable") == digest(1)
    assert client.digest(REPOSITORY, "9.9") is None


def test_unknown_repository_of_an_older_harbor_looks_empty(fake, client):
    # Harbor before goharbor/harbor#17443 was fixed answers 200 [] for a repository that does not exist in a
    # project that does: the client cannot tell it from an emptied repository.
    fake.harbor_empty_unknown_repository = True
    fake.add_harbor_artifact(REPOSITORY, digest(1), tags=["1.0"])

    assert client.tags("library/no-such-repository") == []
    (listing,) = fake.received("*/no-such-repository/artifacts")
    assert listing.query["page"] == "1"
