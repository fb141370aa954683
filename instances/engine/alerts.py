"""Missed backups: an instance without a verified backup for ``PORTAL_BACKUP_MAX_AGE_HOURS`` opens an alert.

One alert per incident: it opens once (and mails the organisation's functional admins and the maintainers once),
stays open while the backups stay missing, and closes when a verified backup arrives (or the instance is gone).
"""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from core import notifications
from core.choices import MembershipRole
from core.jobs import periodic
from core.models import Membership
from instances.choices import BackupStatus, InstanceStatus
from instances.models import Backup, BackupAlert, Instance

logger = logging.getLogger("instances.engine")
# Instances that are meant to be backed up: not being created, deleted or gone.
WATCHED = (InstanceStatus.RUNNING, InstanceStatus.UPGRADING, InstanceStatus.DEGRADED, InstanceStatus.FAILED)


def _cutoff(now: datetime.datetime) -> datetime.datetime:
    return now - datetime.timedelta(hours=settings.PORTAL_BACKUP_MAX_AGE_HOURS)


def notify_alert(alert_pk: int) -> None:
    """Mail an alert's opening to the organisation's functional admins and the maintainers, once."""
    alert = BackupAlert.objects.select_related("instance__organisation").get(pk=alert_pk)
    if alert.notified:
        return
    instance = alert.instance
    admins = Membership.objects.filter(organisation=instance.organisation, role=MembershipRole.ADMIN).exclude(
        user__email=""
    )
    recipients = [*admins.values_list("user__email", flat=True), *notifications.maintainer_emails()]
    context = {
        "alert": alert,
        "instance": instance,
        "hours": settings.PORTAL_BACKUP_MAX_AGE_HOURS,
        "url": settings.PORTAL_BASE_URL + instance.get_absolute_url(),
    }
    if notifications.send("backup_missed", context, recipients):
        BackupAlert.objects.filter(pk=alert.pk).update(notified=True)


@periodic("check_missed_backups")
def check_missed_backups(now: datetime.datetime | None = None) -> str:
    """Open an alert for every watched instance without a recent verified backup; close the others' alerts."""
    now = now or timezone.now()
    cutoff = _cutoff(now)
    fresh = Backup.objects.filter(instance=OuterRef("pk"), status=BackupStatus.VERIFIED, finished_at__gte=cutoff)
    open_alert = BackupAlert.objects.filter(instance=OuterRef("pk"), closed_at__isnull=True)
    missing = (
        Instance.objects.filter(status__in=WATCHED, created_at__lt=cutoff)  # a new instance had no chance yet
        .annotate(fresh=Exists(fresh), alerted=Exists(open_alert))
        .filter(fresh=False, alerted=False)
        .annotate(last_verified=Max("backups__finished_at", filter=Q(backups__status=BackupStatus.VERIFIED)))
    )
    opened = []
    for instance in missing:
        try:
            with transaction.atomic():
                alert = BackupAlert.objects.create(
                    instance=instance, opened_at=now, last_verified_at=instance.last_verified
                )
        except IntegrityError:  # another run opened it meanwhile: one alert per incident
            continue
        opened.append(alert.pk)
    # Closed: a verified backup arrived, or the instance is no longer watched (deleted, being deleted).
    closing = BackupAlert.objects.filter(closed_at__isnull=True).filter(
        Q(instance__backups__status=BackupStatus.VERIFIED, instance__backups__finished_at__gte=cutoff)
        | ~Q(instance__status__in=WATCHED)
    )
    closed = BackupAlert.objects.filter(pk__in=closing.values("pk")).update(closed_at=now)
    # The open alerts not mailed yet: those just opened, and those whose mail failed before (tried again).
    for pk in BackupAlert.objects.filter(closed_at__isnull=True, notified=False).values_list("pk", flat=True):
        notify_alert(pk)
    return f"{len(opened)} alerts opened, {closed} closed"


def open_alerts(organisations=None):
    """Open alerts, newest first, of the given organisations (None: all of them)."""
    alerts = BackupAlert.objects.filter(closed_at__isnull=True).select_related("instance__organisation")
    if organisations is not None:
        alerts = alerts.filter(instance__organisation__in=organisations)
    return alerts.order_by("-opened_at", "-pk")
