"""The version catalogue: which tags are versions of an application, and which of them may be deployed.

A version is a tag matching the application's release pattern that every component repository holds; it is
deployable when every component's image passes the application's scan policy. The caller (the instances app)
names the components and stores the result; this module only reads tags.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from registry.models import ImageTag
from registry.policy import MAX_QUOTED_CVES, ScanPolicy


@dataclasses.dataclass(frozen=True)
class Blocker:
    """Why one component's image of a version may not be deployed."""

    component: str
    code: str  # see registry.policy.describe
    count: int = 0
    block_at: str = ""
    cves: tuple[str, ...] = ()

    def as_json(self) -> dict:
        return {
            "component": self.component,
            "code": self.code,
            "count": self.count,
            "block_at": self.block_at,
            "cves": list(self.cves),
        }


@dataclasses.dataclass(frozen=True)
class CatalogueVersion:
    version: str
    tags: Mapping[str, ImageTag]  # component -> its tag
    blockers: tuple[Blocker, ...]

    @property
    def deployable(self) -> bool:
        return not self.blockers

    def images(self) -> dict[str, dict[str, str]]:
        """component -> {"repository", "tag", "digest"}: what a deployment of this version pins."""
        return {
            component: {"repository": tag.repository.reference, "tag": tag.tag, "digest": tag.digest}
            for component, tag in sorted(self.tags.items())
        }


def blockers_for(component: str, tag: ImageTag, policy: ScanPolicy) -> list[Blocker]:
    code, count, cves = policy.check(tag.scan_status, tag.vulnerability_counts or {}, tag.vulnerabilities or [])
    if not code:
        return []
    return [Blocker(component, code, count, policy.block_at, tuple(cves[:MAX_QUOTED_CVES]))]


def versions(components: Mapping[str, int], pattern: str, policy: ScanPolicy) -> list[CatalogueVersion]:
    """The versions found in the registry for ``components`` (component name -> ImageRepository id).

    One query: every present tag of every component repository.
    """
    if not components:
        return []
    release = re.compile(pattern)
    by_repository: dict[int, dict[str, ImageTag]] = {}
    tags = ImageTag.objects.present().filter(repository_id__in=set(components.values()))
    for tag in tags.select_related("repository__registry"):
        if release.search(tag.tag):
            by_repository.setdefault(tag.repository_id, {})[tag.tag] = tag
    names = set.intersection(*(set(by_repository.get(repo, {})) for repo in components.values()))
    result = []
    for name in sorted(names):
        chosen = {component: by_repository[repo][name] for component, repo in components.items()}
        blockers = [b for component, tag in sorted(chosen.items()) for b in blockers_for(component, tag, policy)]
        result.append(CatalogueVersion(version=name, tags=chosen, blockers=tuple(blockers)))
    return result
