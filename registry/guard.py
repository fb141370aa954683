"""The CI guard: does a tag already exist in the registry? A release pipeline asks before it pushes, so that no
tag is ever overwritten. The answer comes from the registry itself, not from the portal's last sync."""

from __future__ import annotations

import dataclasses
import re

from django.utils.translation import gettext as _

from registry.clients import client_for
from registry.clients.errors import RepositoryNotFound
from registry.models import Registry

_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_PATH = re.compile(r"^[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*$")


class GuardError(Exception):
    """The question cannot be asked: a malformed reference, or a registry the portal does not know."""


class UnknownRegistry(GuardError):
    """No registry of the portal serves the reference's host."""


@dataclasses.dataclass(frozen=True)
class TagCheck:
    repository: str
    tag: str
    exists: bool
    digest: str | None

    def as_json(self) -> dict:
        return {"repository": self.repository, "tag": self.tag, "exists": self.exists, "digest": self.digest}


def split_reference(value: str) -> tuple[str, str]:
    """``host/path:tag`` -> (``host/path``, ``tag``); the host may carry a port (``127.0.0.1:5000/smile/core:1.2``)."""
    repository, sep, tag = (value or "").strip().rpartition(":")
    if not sep or "/" in tag or not repository:
        raise GuardError(_("Give REPOSITORY:TAG, e.g. quay.io/smile/core:1.2.7."))
    return repository, tag


def find_registry(repository: str) -> tuple[Registry, str]:
    """The configured registry serving ``repository`` (``host/path``), and the path inside it."""
    host, _sep, path = repository.partition("/")
    for registry in Registry.objects.all():
        if registry.host.lower() == host.lower():
            return registry, path
    raise UnknownRegistry(_("No registry of the portal serves %(host)s.") % {"host": host})


def check(repository: str, tag: str) -> TagCheck:
    """Whether ``repository`` (``host/path``) has ``tag`` now. Raises GuardError, or RegistryError when the
    registry cannot answer."""
    if not _TAG.match(tag or ""):
        raise GuardError(_("%(tag)s is not a valid tag.") % {"tag": tag})
    registry, path = find_registry(repository)
    if not _PATH.match(path):
        raise GuardError(_("%(path)s is not a valid repository path.") % {"path": path})
    try:
        digest = client_for(registry).digest(path, tag)
    except RepositoryNotFound:
        digest = None  # a repository's first push: every tag is free
    return TagCheck(repository=repository, tag=tag, exists=digest is not None, digest=digest)
