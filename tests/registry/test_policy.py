"""The scan policy: which scans let an image be deployed, and how a blocker reads. No database, no registry."""

import pytest
from django.utils import translation

from registry.choices import BlockingSeverity, ScanStatus
from registry.policy import ScanPolicy, describe

CRITICAL = {"id": "CVE-2024-0001", "severity": "critical"}
HIGH = {"id": "CVE-2024-0002", "severity": "high"}
MEDIUM = {"id": "CVE-2024-0003", "severity": "medium"}
LOW = {"id": "CVE-2024-0004", "severity": "low"}
NEGLIGIBLE = {"id": "CVE-2024-0005", "severity": "negligible"}
UNKNOWN = {"id": "CVE-2024-0006", "severity": "unknown"}
EVERY = [CRITICAL, HIGH, MEDIUM, LOW, NEGLIGIBLE, UNKNOWN]
EVERY_COUNTS = {"critical": 1, "high": 1, "medium": 1, "low": 1, "negligible": 1, "unknown": 1}
CLEAN = ("", 0, [])


def ids(*vulnerabilities):
    return [v["id"] for v in vulnerabilities]


# (scan status, counts, vulnerabilities, block_at, allow_not_scanned) -> (code, count, cves)
TABLE = [
    # Not scanned: deployable only where the application allows it, whatever the counts claim.
    (ScanStatus.NOT_SCANNED, {}, [], "critical", False, ("not_scanned", 0, [])),
    (ScanStatus.NOT_SCANNED, {}, [], "critical", True, CLEAN),
    (ScanStatus.NOT_SCANNED, {"critical": 3}, [CRITICAL], "never", True, CLEAN),
    (ScanStatus.NOT_SCANNED, {}, [], "never", False, ("not_scanned", 0, [])),
    # Pending and unknown always block: "not yet known" is not "clean", even where unscanned images are allowed.
    (ScanStatus.PENDING, {}, [], "critical", False, ("pending", 0, [])),
    (ScanStatus.PENDING, {}, [], "never", True, ("pending", 0, [])),
    (ScanStatus.UNKNOWN, {}, [], "critical", True, ("unknown", 0, [])),
    (ScanStatus.UNKNOWN, {}, [], "never", True, ("unknown", 0, [])),
    ("", {}, [], "critical", True, ("unknown", 0, [])),
    ("something-new", {}, [], "critical", True, ("unknown", 0, [])),
    # A completed scan with nothing found.
    (ScanStatus.PASSED, {}, [], "critical", False, CLEAN),
    (ScanStatus.PASSED, {}, [], "low", False, CLEAN),
    # Every severity once, at each threshold: only those from block_at up count and are quoted.
    (ScanStatus.FAILED, EVERY_COUNTS, EVERY, "critical", False, ("vulnerable", 1, ids(CRITICAL))),
    (ScanStatus.FAILED, EVERY_COUNTS, EVERY, "high", False, ("vulnerable", 2, ids(CRITICAL, HIGH))),
    (ScanStatus.FAILED, EVERY_COUNTS, EVERY, "medium", False, ("vulnerable", 3, ids(CRITICAL, HIGH, MEDIUM))),
    (ScanStatus.FAILED, EVERY_COUNTS, EVERY, "low", False, ("vulnerable", 4, ids(CRITICAL, HIGH, MEDIUM, LOW))),
    (ScanStatus.FAILED, EVERY_COUNTS, EVERY, "never", False, CLEAN),
    # The counts decide the count; the list (capped at sync) only supplies the ids.
    (ScanStatus.FAILED, {"critical": 250}, [CRITICAL], "critical", False, ("vulnerable", 250, ids(CRITICAL))),
    (ScanStatus.FAILED, {"high": 2, "critical": 1}, [], "high", False, ("vulnerable", 3, [])),
    # The registry's verdict is not the application's: its own threshold applies to the counts either way.
    (
        ScanStatus.PASSED,
        {"high": 2},
        [HIGH, HIGH | {"id": "CVE-2024-0007"}],
        "high",
        False,
        ("vulnerable", 2, ["CVE-2024-0002", "CVE-2024-0007"]),
    ),
    (ScanStatus.FAILED, {"high": 2}, [HIGH], "critical", False, CLEAN),
    # Below the lowest threshold, or of no known severity: never blocking.
    (ScanStatus.FAILED, {"negligible": 5, "unknown": 4}, [NEGLIGIBLE, UNKNOWN], "low", False, CLEAN),
    (ScanStatus.FAILED, {"made-up": 7}, [{"id": "X-1", "severity": "made-up"}], "low", False, CLEAN),
    # A vulnerability without a severity is of unknown severity.
    (ScanStatus.FAILED, {"critical": 1}, [{"id": "CVE-2024-0008"}], "critical", False, ("vulnerable", 1, [])),
]


@pytest.mark.parametrize(("status", "counts", "vulnerabilities", "block_at", "allow", "expected"), TABLE)
def test_check(status, counts, vulnerabilities, block_at, allow, expected):
    policy = ScanPolicy(block_at=block_at, allow_not_scanned=allow)

    assert policy.check(status, counts, vulnerabilities) == expected


def test_the_default_policy_blocks_critical_and_unscanned():
    policy = ScanPolicy()

    assert policy.check(ScanStatus.FAILED, {"critical": 1, "high": 9}, [CRITICAL, HIGH]) == (
        "vulnerable",
        1,
        ids(CRITICAL),
    )
    assert policy.check(ScanStatus.NOT_SCANNED, {}, []) == ("not_scanned", 0, [])


@pytest.mark.parametrize("block_at", [choice for choice in BlockingSeverity.values if choice != "never"])
def test_every_blocking_choice_is_a_severity_the_policy_can_rank(block_at):
    # A threshold the severity ranking did not know would rank 0 and block everything, even "unknown" findings.
    policy = ScanPolicy(block_at=block_at)

    assert policy.check(ScanStatus.FAILED, {"unknown": 1, "negligible": 1}, [UNKNOWN, NEGLIGIBLE]) == CLEAN
    assert policy.check(ScanStatus.FAILED, {"critical": 1}, [CRITICAL])[0] == "vulnerable"


# --- describe -----------------------------------------------------------------------------------------------

DESCRIPTIONS = [
    ({"component": "core", "code": "not_scanned"}, "core: not scanned"),
    ({"component": "nginx", "code": "pending", "count": 0, "block_at": "critical", "cves": []}, "nginx: scan pending"),
    ({"component": "core", "code": "unknown"}, "core: scan result unknown"),
    ({"component": "core", "code": "something-new"}, "core: scan result unknown"),
    (
        {"component": "core", "code": "vulnerable", "count": 2, "block_at": "high", "cves": ["CVE-1", "CVE-2"]},
        "core: 2 vulnerabilities at High or Critical (CVE-1, CVE-2)",
    ),
    (
        {"component": "nginx", "code": "vulnerable", "count": 12, "block_at": "critical", "cves": []},
        "nginx: 12 vulnerabilities at Critical",
    ),
    # A threshold no longer offered is shown as stored rather than failing the page.
    (
        {"component": "core", "code": "vulnerable", "count": 3, "block_at": "severe", "cves": ["CVE-3"]},
        "core: 3 vulnerabilities at severe (CVE-3)",
    ),
    # A stored blocker missing fields still reads.
    ({"code": "vulnerable"}, "?: 0 vulnerabilities at Critical"),
]


@pytest.mark.parametrize(("blocker", "expected"), DESCRIPTIONS)
def test_describe_in_english(blocker, expected):
    assert describe(blocker) == expected


@pytest.mark.parametrize(("blocker", "english"), DESCRIPTIONS)
def test_describe_in_french_does_not_fail_and_keeps_the_facts(blocker, english):
    with translation.override("fr"):
        text = describe(blocker)

    # The French strings may not be translated yet: the component and the CVE ids are there in any language.
    assert text.startswith(f"{blocker.get('component', '?')}: ")
    for cve in blocker.get("cves") or []:
        assert cve in text
    if blocker.get("count"):
        assert str(blocker["count"]) in text
