"""Backup retention: which dumps to delete from the storage, and the periodic job that deletes them.

Per instance size (``PORTAL_BACKUP_RETENTION``), the regular backups (scheduled and on demand) kept are the newest
of each of the last ``daily`` days and the newest of each of the last ``weekly`` ISO weeks, counting only days
and weeks that have a verified backup: an instance whose backups stopped keeps its last ones rather than losing
them all as the calendar moves on. The dumps taken before an upgrade, a restore or a deletion are kept at least
as long as the regular backups of their time: one expires only once it is older than every regular backup kept.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.audit import AuditContext, record
from core.jobs import periodic
from instances.choices import BackupStatus, BackupTrigger, OperationStatus
from instances.engine.storage import StorageError, delete
from instances.models import Backup, ChangeRequest, Instance, Operation

logger = logging.getLogger("instances.engine")
RETENTION = AuditContext.system("backup retention")
REGULAR = (BackupTrigger.SCHEDULE, BackupTrigger.MANUAL)


@dataclass(frozen=True)
class Policy:
    """How many daily and weekly regular backups an instance keeps."""

    daily: int
    weekly: int

    @classmethod
    def for_size(cls, size: str) -> Policy:
        table = settings.PORTAL_BACKUP_RETENTION
        values = table.get(size) or table["small"]
        return cls(daily=int(values.get("daily", 0)), weekly=int(values.get("weekly", 0)))


def _newest_per(backups: list[Backup], period, count: int) -> set[int]:
    """The pks of the newest backup of each of the ``count`` most recent periods that have one."""
    kept: dict = {}
    for backup in backups:  # newest first
        key = period(backup.taken_at)
        if key not in kept:
            if len(kept) == count:
                break
            kept[key] = backup.pk
    return set(kept.values())


def expired(backups: Iterable[Backup], policy: Policy, now: datetime.datetime) -> list[Backup]:
    """The verified backups of one instance that retention deletes now, oldest first.

    Pure: it reads only the rows given (their trigger, status and time) and ``now``, which bounds what counts
    (a backup from the future, by a clock's skew, is kept).
    """
    verified = sorted(
        (b for b in backups if b.status == BackupStatus.VERIFIED and b.taken_at <= now),
        key=lambda b: (b.taken_at, b.pk),
        reverse=True,
    )
    regular = [b for b in verified if b.trigger in REGULAR]
    if not regular:
        return []  # nothing to measure the special dumps against, and no regular one to thin out
    zone = timezone.get_current_timezone()
    kept = _newest_per(regular, lambda at: timezone.localtime(at, zone).date(), policy.daily)
    kept |= _newest_per(regular, lambda at: timezone.localtime(at, zone).isocalendar()[:2], policy.weekly)
    kept.add(regular[0].pk)  # the newest regular backup, whatever the policy says
    oldest_kept = min(b.taken_at for b in regular if b.pk in kept)
    gone = [b for b in verified if b.pk not in kept and (b.trigger in REGULAR or b.taken_at < oldest_kept)]
    return sorted(gone, key=lambda b: (b.taken_at, b.pk))


def expire(backup: Backup, now: datetime.datetime) -> bool:
    """Delete one backup's dump from the storage; mark it expired and audit it. False when the storage refused."""
    try:
        if backup.storage_key:
            delete(backup.instance, backup.storage_key)
    except StorageError as error:
        logger.warning("retention could not delete %s of %s: %s", backup.storage_key, backup.instance, error)
        return False
    with transaction.atomic():
        updated = Backup.objects.filter(pk=backup.pk, status=BackupStatus.VERIFIED).update(
            status=BackupStatus.EXPIRED, expired_at=now
        )
        if updated:
            record(
                RETENTION,
                "backup.expired",
                backup,
                organisation_id=backup.instance.organisation_id,
                label=f"{backup.instance.slug} {backup.job_name}",
                before={"status": BackupStatus.VERIFIED, "storage_key": backup.storage_key},
                after={"status": BackupStatus.EXPIRED},
                reason=f"retention policy ({backup.instance.size})",
            )
    return bool(updated)


@periodic("apply_backup_retention")
def apply_backup_retention(now: datetime.datetime | None = None) -> str:
    """Delete the dumps the retention policy no longer keeps, instance by instance."""
    now = now or timezone.now()
    instance_ids = Backup.objects.filter(status=BackupStatus.VERIFIED).values_list("instance_id", flat=True).distinct()
    instances = Instance.objects.filter(pk__in=instance_ids).select_related("organisation")
    # A backup an open restore request or an active restore or drill is about to read stays until they end.
    wanted = set(ChangeRequest.objects.open().filter(backup__isnull=False).values_list("backup_id", flat=True)) | set(
        Operation.objects.filter(status__in=OperationStatus.active(), backup__isnull=False).values_list(
            "backup_id", flat=True
        )
    )
    deleted = failed = 0
    for instance in instances:
        backups = list(instance.backups.filter(status=BackupStatus.VERIFIED))
        for backup in expired(backups, Policy.for_size(instance.size), now):
            if backup.pk in wanted:
                continue
            backup.instance = instance
            if expire(backup, now):
                deleted += 1
            else:
                failed += 1
    return f"{deleted} dumps deleted, {failed} left for the next run"
