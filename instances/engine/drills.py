"""Queuing restore drills: one per live instance with a verified backup, every ``PORTAL_RESTORE_DRILL_INTERVAL``
seconds (and when a maintainer asks). A drill is an operation without a request (like a resync): it restores the
instance's latest verified backup into a scratch database, so a backup that cannot be restored is known before it
is needed. The handler is :func:`instances.engine.restore.drill`.
"""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from core.jobs import periodic
from instances.choices import InstanceStatus, OperationKind
from instances.engine.dispatcher import queue_instance_operation
from instances.models import Backup, Instance, Operation

logger = logging.getLogger("instances.engine")
# Instances whose database is there to restore from: deployed, and neither being created nor deleted.
DRILLED_STATUSES = (InstanceStatus.RUNNING, InstanceStatus.DEGRADED, InstanceStatus.UPGRADING)


def queue_drill(instance: Instance, backup_id: int | None = None) -> Operation | None:
    """Queue a drill of ``instance`` (of its latest verified backup unless given); None when it has no verified
    backup, is not live, has no restore CronJob, or has an operation in progress."""
    if instance.status not in DRILLED_STATUSES or instance.cluster_id is None:
        return None
    if not instance.application.restore_cronjob:
        return None
    if backup_id is None:
        latest = instance.backups.verified().first()
        if latest is None:
            return None
        backup_id = latest.pk
    try:
        with transaction.atomic():
            operation = queue_instance_operation(instance, OperationKind.DRILL, backup_id=backup_id)
    except IntegrityError:
        return None  # another operation is active on this instance: the next drill takes it
    return operation


def queue_drills(*, drilled_since=None) -> list[Operation]:
    """One drill per live instance with a verified backup (the busy ones are skipped, and with ``drilled_since``
    those that had a drill since then)."""
    newest = Backup.objects.filter(instance=OuterRef("pk")).verified()
    candidates = (
        Instance.objects.filter(status__in=DRILLED_STATUSES, cluster__isnull=False)
        .exclude(application__restore_cronjob="")
        .annotate(drill_backup_id=Subquery(newest.values("pk")[:1]))
        .filter(drill_backup_id__isnull=False)
        .select_related("application", "organisation")
        .order_by("slug")
    )
    if drilled_since is not None:
        recent = Operation.objects.filter(
            instance=OuterRef("pk"), kind=OperationKind.DRILL, queued_at__gte=drilled_since
        )
        candidates = candidates.exclude(Exists(recent))
    queued = []
    for instance in candidates:
        operation = queue_drill(instance, instance.drill_backup_id)
        if operation is not None:
            queued.append(operation)
    return queued


@periodic("restore_drills")
def restore_drills() -> str:
    """The periodic drill of every live instance not drilled within the interval: the scheduler runs an interval
    job at once when it starts, and a restart must not drill the whole fleet again."""
    since = timezone.now() - datetime.timedelta(seconds=settings.PORTAL_RESTORE_DRILL_INTERVAL)
    queued = queue_drills(drilled_since=since)
    if queued:
        logger.info("restore drills queued: %s", [operation.pk for operation in queued])
    return f"queued {len(queued)} restore drills"
