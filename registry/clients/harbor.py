"""A Harbor client (Harbor's API v2.0): the artifacts of a repository with their tags and scan overview, page by
page, and the vulnerability list of an artifact whose scan found something. Harbor authenticates with basic auth
(a robot account's name and secret).

A repository path is ``project/repository``; Harbor wants the repository part URL-encoded twice (``a%252Fb``).
"""

from __future__ import annotations

import datetime
from urllib.parse import quote

from registry.choices import ScanStatus
from registry.clients.base import RegistryClient, RemoteTag, Scan
from registry.clients.errors import MalformedAnswer, RepositoryNotFound

PAGE_SIZE = 100
REPORT_TYPES = (
    "application/vnd.security.vulnerability.report; version=1.1",
    "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0",
)
# Harbor's scan_status -> ours; "Success" is judged from the findings.
HARBOR_STATUS = {
    "Pending": ScanStatus.PENDING,
    "Running": ScanStatus.PENDING,
    "Scheduled": ScanStatus.PENDING,
    "Error": ScanStatus.UNKNOWN,
    "Stopped": ScanStatus.UNKNOWN,
    "Not Scanned": ScanStatus.NOT_SCANNED,
}


def _timestamp(value):
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _overview(artifact: dict) -> dict | None:
    overview = artifact.get("scan_overview") or {}
    if not isinstance(overview, dict):
        return None
    for report_type in REPORT_TYPES:
        if isinstance(overview.get(report_type), dict):
            return overview[report_type]
    return next((value for value in overview.values() if isinstance(value, dict)), None)


class HarborClient(RegistryClient):
    kind = "harbor"

    def _base(self, repository: str) -> str:
        project, _, name = repository.partition("/")
        if not name:
            raise RepositoryNotFound(f"{repository} (a Harbor path is project/repository)")
        return f"api/v2.0/projects/{quote(project, safe='')}/repositories/{quote(quote(name, safe=''), safe='')}"

    def tags(self, repository: str) -> list[RemoteTag]:
        result = []
        params = {"with_tag": "true", "with_scan_overview": "true", "page": 1, "page_size": PAGE_SIZE}
        for response in self.pages(f"{self._base(repository)}/artifacts", repository=repository, params=params):
            artifacts = self.json(response)
            if not isinstance(artifacts, list) or not all(isinstance(a, dict) for a in artifacts):
                raise MalformedAnswer(f"{response.url}: not a list of artifacts")
            for artifact in artifacts:
                result.extend(self._artifact_tags(repository, artifact))
        return result

    def _artifact_tags(self, repository: str, artifact: dict) -> list[RemoteTag]:
        digest = artifact.get("digest")
        if not isinstance(digest, str):
            raise MalformedAnswer(f"{repository}: an artifact without digest")
        tags = artifact.get("tags") or []
        if not tags:
            return []
        scan = self.scan(repository, digest, _overview(artifact))
        size = artifact.get("size")
        return [
            RemoteTag(
                tag=tag["name"],
                digest=digest,
                pushed_at=_timestamp(tag.get("push_time") or artifact.get("push_time")),
                size=size if isinstance(size, int) else None,
                scan=scan,
            )
            for tag in tags
            if isinstance(tag, dict) and isinstance(tag.get("name"), str)
        ]

    def scan(self, repository: str, digest: str, overview: dict | None) -> Scan:
        if not overview:
            return Scan(status=ScanStatus.NOT_SCANNED)
        status = overview.get("scan_status")
        if status != "Success":
            return Scan(status=HARBOR_STATUS.get(status, ScanStatus.UNKNOWN))
        summary = ((overview.get("summary") or {}).get("summary")) or {}
        if not any(isinstance(n, int) and n > 0 for n in summary.values()):
            return Scan.from_findings([])
        response = self.request(
            "GET",
            f"{self._base(repository)}/artifacts/{digest}/additions/vulnerabilities",
            repository=repository,
            ok=(404,),
        )
        if response.status_code == 404:
            return Scan(status=ScanStatus.UNKNOWN)  # deleted between the listing and its report
        reports = self.json(response)
        if not isinstance(reports, dict):
            raise MalformedAnswer(f"{response.url}: not a vulnerability report")
        findings = [
            (item.get("id", ""), item.get("severity"))
            for report in reports.values()
            if isinstance(report, dict)
            for item in report.get("vulnerabilities") or []
            if isinstance(item, dict)
        ]
        return Scan.from_findings(findings)
