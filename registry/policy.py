"""The scan policy: whether an image's scan allows it to be deployed, and if not, why (which CVEs)."""

from __future__ import annotations

import dataclasses

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from registry.choices import BlockingSeverity, ScanStatus, Severity

# CVE ids quoted in a reason: enough to act on, not a wall of text (the registry page lists them all).
MAX_QUOTED_CVES = 10


@dataclasses.dataclass(frozen=True)
class ScanPolicy:
    """What an application accepts: vulnerabilities from ``block_at`` up block; unscanned images only if allowed.

    A pending scan and an unknown result always block: "not yet known" is not "clean".
    """

    block_at: str = BlockingSeverity.CRITICAL
    allow_not_scanned: bool = False

    def blocking_cves(self, vulnerabilities: list[dict]) -> list[str]:
        if self.block_at == BlockingSeverity.NEVER:
            return []
        threshold = Severity.rank(self.block_at)
        return [v["id"] for v in vulnerabilities if Severity.rank(v.get("severity", "")) >= threshold]

    def blocking_count(self, counts: dict[str, int]) -> int:
        if self.block_at == BlockingSeverity.NEVER:
            return 0
        threshold = Severity.rank(self.block_at)
        return sum(n for severity, n in counts.items() if Severity.rank(severity) >= threshold)

    def check(self, scan_status: str, counts: dict[str, int], vulnerabilities: list[dict]) -> tuple[str, int, list]:
        """("", 0, []) when the image may be deployed; otherwise why (a code of ``REASONS``), how many
        vulnerabilities block it and their ids."""
        if scan_status == ScanStatus.NOT_SCANNED:
            return ("", 0, []) if self.allow_not_scanned else ("not_scanned", 0, [])
        if scan_status == ScanStatus.PENDING:
            return "pending", 0, []
        if scan_status not in (ScanStatus.PASSED, ScanStatus.FAILED):
            return "unknown", 0, []
        count = self.blocking_count(counts)
        if not count:
            return "", 0, []
        return "vulnerable", count, self.blocking_cves(vulnerabilities)


def describe(blocker: dict) -> str:
    """A stored blocker ({"component", "code", "count", "block_at", "cves"}) in the reader's language."""
    code = blocker.get("code")
    if code == "not_scanned":
        reason = _("not scanned")
    elif code == "pending":
        reason = _("scan pending")
    elif code == "vulnerable":
        severity = blocker.get("block_at", BlockingSeverity.CRITICAL)
        label = BlockingSeverity(severity).label if severity in BlockingSeverity.values else severity
        count = blocker.get("count", 0)
        reason = ngettext("%(n)d vulnerability at %(severity)s", "%(n)d vulnerabilities at %(severity)s", count) % {
            "n": count,
            "severity": label,
        }
    else:
        reason = _("scan result unknown")
    cves = blocker.get("cves") or []
    text = f"{blocker.get('component', '?')}: {reason}"
    return f"{text} ({', '.join(cves)})" if cves else text
