"""A Quay client (Quay's REST API v1): the repository's active tags, page by page, and the security scan of each
tag's manifest (``/manifest/{digest}/security``). Quay authenticates API calls with a bearer token (an OAuth
application token, or a robot's)."""

from __future__ import annotations

import datetime
import email.utils

from registry.choices import ScanStatus
from registry.clients.base import RegistryClient, RemoteTag, Scan
from registry.clients.errors import MalformedAnswer

PAGE_SIZE = 100
# Quay's scan states (security endpoint "status") -> ours; "scanned" is judged from the findings.
QUAY_STATUS = {"queued": ScanStatus.PENDING, "failed": ScanStatus.UNKNOWN, "unsupported": ScanStatus.NOT_SCANNED}


def _timestamp(value):
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    # Quay writes its dates in UTC with the zone "-0000", which Python reads as a naive datetime: it is UTC.
    return when.replace(tzinfo=datetime.UTC) if when.tzinfo is None else when


class QuayClient(RegistryClient):
    kind = "quay"

    def tags(self, repository: str) -> list[RemoteTag]:
        result = []
        for entry in self._tag_entries(repository):
            digest = entry.get("manifest_digest")
            name = entry.get("name")
            if not isinstance(name, str) or not isinstance(digest, str):
                raise MalformedAnswer(f"{repository}: a tag without name or manifest_digest")
            size = entry.get("size")
            result.append(
                RemoteTag(
                    tag=name,
                    digest=digest,
                    pushed_at=_timestamp(entry.get("last_modified")),
                    size=size if isinstance(size, int) else None,
                    scan=self.scan(repository, digest),
                )
            )
        return result

    def _tag_entries(self, repository: str) -> list[dict]:
        entries: list[dict] = []
        page = 1
        while True:
            response = self.request(
                "GET",
                f"api/v1/repository/{repository}/tag/",
                repository=repository,
                params={"onlyActiveTags": "true", "limit": PAGE_SIZE, "page": page},
            )
            body = self.json(response)
            tags = body.get("tags") if isinstance(body, dict) else None
            if not isinstance(tags, list) or not all(isinstance(t, dict) for t in tags):
                raise MalformedAnswer(f"{response.url}: no tag list")
            entries.extend(tags)
            if not body.get("has_additional"):
                return entries
            page += 1
            if page > self._max_pages():
                raise MalformedAnswer(f"{repository}: pagination does not end")

    @staticmethod
    def _max_pages() -> int:
        from django.conf import settings

        return settings.PORTAL_REGISTRY_MAX_PAGES

    def scan(self, repository: str, digest: str) -> Scan:
        response = self.request(
            "GET",
            f"api/v1/repository/{repository}/manifest/{digest}/security",
            repository=repository,
            params={"vulnerabilities": "true"},
            ok=(404,),
        )
        if response.status_code == 404:
            return Scan(status=ScanStatus.NOT_SCANNED)
        body = self.json(response)
        if not isinstance(body, dict):
            raise MalformedAnswer(f"{response.url}: not a scan report")
        status = body.get("status")
        if status != "scanned":
            return Scan(status=QUAY_STATUS.get(status, ScanStatus.UNKNOWN))
        features = ((body.get("data") or {}).get("Layer") or {}).get("Features") or []
        findings = [
            (vulnerability.get("Name", ""), vulnerability.get("Severity"))
            for feature in features
            if isinstance(feature, dict)
            for vulnerability in feature.get("Vulnerabilities") or []
            if isinstance(vulnerability, dict)
        ]
        return Scan.from_findings(findings)
