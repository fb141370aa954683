"""Refreshing what the portal knows of a registry: tags, digests, scans; and the alert a moved tag raises.

The registry is read outside any transaction (network calls have timeouts, but hold no lock while waiting); the
answer is written in one transaction per repository, under a lock on the repository's row, so that a webhook's
sync and the periodic one never both report the same overwrite.
"""

from __future__ import annotations

import dataclasses
import logging

from django.db import transaction
from django.utils import timezone

from core import notifications
from core.audit import AuditContext, record
from core.jobs import enqueue, periodic
from registry.clients import client_for
from registry.clients.base import RegistryClient, RemoteTag
from registry.clients.errors import RegistryError
from registry.models import ImageRepository, ImageTag, Registry, TagOverwrite
from registry.signals import tags_synced

logger = logging.getLogger(__name__)
SYNC_CONTEXT = AuditContext.system("registry sync")
# Scans list thousands of findings for some images; the page shows counts and these first ids.
MAX_STORED_VULNERABILITIES = 200


@dataclasses.dataclass
class RepositorySync:
    repository: str
    added: int = 0
    updated: int = 0
    removed: int = 0
    overwritten: int = 0
    error: str = ""

    def __str__(self) -> str:
        if self.error:
            return f"{self.repository}: {self.error}"
        return (
            f"{self.repository}: {self.added} new, {self.updated} updated, {self.removed} gone, "
            f"{self.overwritten} overwritten"
        )


def _fields(remote: RemoteTag) -> dict:
    return {
        "digest": remote.digest,
        "present": True,
        "pushed_at": remote.pushed_at,
        "size": remote.size,
        "scan_status": remote.scan.status,
        "vulnerability_counts": dict(sorted(remote.scan.counts.items())),
        "vulnerabilities": [
            {"id": vid, "severity": severity}
            for vid, severity in remote.scan.vulnerabilities[:MAX_STORED_VULNERABILITIES]
        ],
    }


def sync_repository(repository: ImageRepository, client: RegistryClient | None = None) -> RepositorySync:
    """Read the repository's tags from its registry and store them; a failure is stored and returned, not raised."""
    result = RepositorySync(repository.reference)
    # Another sync (a webhook's, say) may commit between this read and the lock below: what it wrote after this
    # read began is newer than what this read holds, and is left alone.
    read_at = timezone.now()
    try:
        client = client or client_for(repository.registry)
        remote = {tag.tag: tag for tag in client.tags(repository.path)}
    except RegistryError as error:
        result.error = str(error)
        logger.warning("registry sync of %s failed: %s", repository.reference, error)
        ImageRepository.objects.filter(pk=repository.pk).update(last_sync_at=timezone.now(), last_error=result.error)
        return result
    with transaction.atomic():
        ImageRepository.objects.select_for_update().filter(pk=repository.pk).first()
        known = {tag.tag: tag for tag in ImageTag.objects.filter(repository=repository)}
        for name, found in remote.items():
            fields = _fields(found)
            tag = known.get(name)
            if tag is None:
                ImageTag.objects.create(repository=repository, tag=name, first_digest=found.digest, **fields)
                result.added += 1
                continue
            if tag.last_seen_at > read_at:
                continue
            if tag.digest != found.digest:
                _overwritten(tag, tag.digest, found.digest)
                result.overwritten += 1
            changed = any(getattr(tag, key) != value for key, value in fields.items())
            if changed:
                for key, value in fields.items():
                    setattr(tag, key, value)
                tag.save()
                result.updated += 1
        gone = [
            tag.pk for name, tag in known.items() if name not in remote and tag.present and tag.last_seen_at <= read_at
        ]
        result.removed = ImageTag.objects.filter(pk__in=gone).update(present=False)
        ImageRepository.objects.filter(pk=repository.pk).update(last_sync_at=timezone.now(), last_error="")
    return result


def _overwritten(tag: ImageTag, old: str, new: str) -> None:
    """A known tag points to another digest: record it, audit it, and tell the maintainers once this commits."""
    TagOverwrite.objects.create(tag=tag, old_digest=old, new_digest=new)
    record(SYNC_CONTEXT, "registry.tag_overwritten", tag, before={"digest": old}, after={"digest": new})
    logger.warning("tag %s was overwritten: %s -> %s", tag, old, new)
    context = {"tag": str(tag), "reference": f"{tag.repository.reference}:{tag.tag}", "old": old, "new": new}
    transaction.on_commit(
        lambda: notifications.send("tag_overwritten", context, notifications.maintainer_emails()), robust=True
    )


def sync_registry(registry: Registry, repositories=None) -> list[RepositorySync]:
    """Sync ``repositories`` (default: all) of ``registry`` with one client, then tell the apps above.

    The registry's own last sync and error describe a sync of all its repositories: a webhook's sync of one
    repository leaves them (and the errors of the others) as they are."""
    whole = repositories is None
    repositories = list(repositories if repositories is not None else registry.repositories.all())
    for repository in repositories:
        repository.registry = registry  # no query per repository for its registry
    try:
        client = client_for(registry)
    except RegistryError as error:
        results = [RepositorySync(r.reference, error=str(error)) for r in repositories]
    else:
        results = [sync_repository(repository, client) for repository in repositories]
    if whole:
        errors = [str(r) for r in results if r.error]
        Registry.objects.filter(pk=registry.pk).update(last_sync_at=timezone.now(), last_error="\n".join(errors)[:4000])
    synced = [r.pk for r, result in zip(repositories, results, strict=True) if not result.error]
    if synced:
        tags_synced.send(sender=Registry, repository_ids=synced)
    return results


@periodic("registry sync")
def sync_registries() -> str:
    """The periodic sync of every registry (its run is recorded on the Jobs page)."""
    lines = []
    for registry in Registry.objects.all():
        lines.extend(str(result) for result in sync_registry(registry))
    return "\n".join(lines) or "no registry configured"


def sync_repository_job(repository_pk: int) -> str:
    """The sync a push webhook asks for: one repository."""
    repository = ImageRepository.objects.select_related("registry").filter(pk=repository_pk).first()
    if repository is None:
        return "repository gone"
    return "\n".join(str(r) for r in sync_registry(repository.registry, [repository]))


def enqueue_repository_sync(repository: ImageRepository) -> None:
    """Sync ``repository`` soon, in the background (a replayed notification only costs one more sync)."""
    enqueue(sync_repository_job, repository.pk, queue="sync", job_id=f"registry-sync-{repository.pk}")


def sync_registry_job(registry_pk: int) -> str:
    """A maintainer's "sync now" of one registry."""
    registry = Registry.objects.filter(pk=registry_pk).first()
    if registry is None:
        return "registry gone"
    return "\n".join(str(r) for r in sync_registry(registry))


def resolve_overwrite(ctx: AuditContext, overwrite: TagOverwrite) -> bool:
    """A maintainer has dealt with a moved tag: the alert closes (audited). False when it was already closed."""
    closed = TagOverwrite.objects.filter(pk=overwrite.pk, resolved_at__isnull=True).update(
        resolved_at=timezone.now(), resolved_by=ctx.actor_label[:200]
    )
    if closed:
        record(ctx, "registry.overwrite_resolved", overwrite.tag, after={"old_digest": overwrite.old_digest})
    return bool(closed)
