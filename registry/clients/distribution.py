"""A Distribution (Docker registry HTTP API v2) client: ``tags/list`` with ``Link`` pagination, and a manifest
``HEAD`` for each tag's digest. Distribution has no scanner: its tags are ``not scanned``."""

from __future__ import annotations

import hashlib

from registry.clients.base import RegistryClient, RemoteTag
from registry.clients.errors import MalformedAnswer

# Asked for in this order: an index / manifest list first, so that the digest is the one a multi-arch pull uses.
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
PAGE_SIZE = 100


class DistributionClient(RegistryClient):
    kind = "distribution"

    def tag_names(self, repository: str) -> list[str]:
        names: list[str] = []
        url = f"v2/{repository}/tags/list"
        for response in self.pages(url, repository=repository, params={"n": PAGE_SIZE}):
            body = self.json(response)
            tags = body.get("tags") if isinstance(body, dict) else None
            if tags is None and isinstance(body, dict) and "tags" in body:
                tags = []  # an emptied repository answers "tags": null
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise MalformedAnswer(f"{response.url}: no tag list")
            names.extend(tags)
        return names

    def digest(self, repository: str, tag: str) -> str | None:
        headers = {"Accept": ", ".join(MANIFEST_TYPES)}
        response = self.request(
            "HEAD", f"v2/{repository}/manifests/{tag}", repository=repository, headers=headers, ok=(404,)
        )
        if response.status_code == 404:
            # The repository may exist without this tag (MANIFEST_UNKNOWN); an unknown repository is an error.
            self.tag_names(repository)
            return None
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            # Some registries omit the header on HEAD; the digest is the hash of the manifest's bytes.
            body = self.request("GET", f"v2/{repository}/manifests/{tag}", repository=repository, headers=headers)
            digest = "sha256:" + hashlib.sha256(body.content).hexdigest()
        if not digest.startswith("sha256:"):
            raise MalformedAnswer(f"{repository}:{tag}: digest {digest[:80]!r}")
        return digest

    def tags(self, repository: str) -> list[RemoteTag]:
        result = []
        for name in self.tag_names(repository):
            digest = self.digest(repository, name)
            if digest:  # deleted between the list and the HEAD
                result.append(RemoteTag(tag=name, digest=digest))
        return result
