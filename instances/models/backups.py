"""Backups (one row per timemachine Job) and missed-backup alerts."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.models.jobs import Timed
from instances.choices import BackupStatus, BackupTrigger


class BackupQuerySet(models.QuerySet):
    def verified(self) -> "BackupQuerySet":
        """The backups one may restore or download, newest first."""
        return self.filter(status=BackupStatus.VERIFIED).order_by("-finished_at", "-started_at", "-id")


class Backup(Timed, models.Model):
    """One run of an instance's timemachine (a Job in its namespace) and the dump it left in the storage.

    The Job's success only says it uploaded; the portal then reads the object back (``storage_key``) with the
    instance's own credentials and compares its size and SHA-256 with what the Job recorded next to it. Only a
    *verified* backup may be restored or downloaded. Retention deletes the object and marks the row expired; the
    row stays as history.
    """

    instance = models.ForeignKey(
        "instances.Instance", on_delete=models.CASCADE, related_name="backups", verbose_name=_("instance")
    )
    job_name = models.CharField(_("job"), max_length=253)
    trigger = models.CharField(_("trigger"), max_length=16, choices=BackupTrigger.choices)
    status = models.CharField(_("status"), max_length=16, choices=BackupStatus.choices, default=BackupStatus.RUNNING)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    message = models.TextField(_("message"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    # Where the dump is: the object key in the instance's bucket (``instances/<slug>/<job>.dump``).
    storage_key = models.CharField(_("storage key"), max_length=1024, blank=True)
    size = models.PositiveBigIntegerField(_("size (bytes)"), null=True, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    verified_at = models.DateTimeField(_("verified at"), null=True, blank=True)
    expired_at = models.DateTimeField(_("deleted from the storage at"), null=True, blank=True)

    objects = BackupQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("backup")
        verbose_name_plural = _("backups")
        constraints = [models.UniqueConstraint(fields=["instance", "job_name"], name="backup_unique_job")]
        indexes = [models.Index(fields=["instance", "status", "-finished_at"], name="backup_instance_status")]

    def __str__(self) -> str:
        return f"{self.instance} {self.job_name} ({self.status})"

    @property
    def is_verified(self) -> bool:
        return self.status == BackupStatus.VERIFIED

    @property
    def taken_at(self):
        """When the dump was taken: the Job's end (its start while it runs)."""
        return self.finished_at or self.started_at or self.created_at


class BackupAlert(models.Model):
    """An incident: an instance had no verified backup for longer than ``PORTAL_BACKUP_MAX_AGE_HOURS``.

    Opened once (and mailed once) by the periodic check, closed when a verified backup arrives again; at most
    one open alert per instance.
    """

    instance = models.ForeignKey(
        "instances.Instance", on_delete=models.CASCADE, related_name="backup_alerts", verbose_name=_("instance")
    )
    opened_at = models.DateTimeField(_("opened at"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    # The last verified backup when the alert opened (None: the instance never had one).
    last_verified_at = models.DateTimeField(_("last verified backup"), null=True, blank=True)
    notified = models.BooleanField(_("mail sent"), default=False)

    class Meta:
        ordering = ["-opened_at", "-id"]
        verbose_name = _("missed-backup alert")
        verbose_name_plural = _("missed-backup alerts")
        constraints = [
            models.UniqueConstraint(
                fields=["instance"], condition=Q(closed_at__isnull=True), name="backupalert_one_open_per_instance"
            )
        ]

    def __str__(self) -> str:
        return f"{self.instance} no verified backup since {self.last_verified_at or 'ever'}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None
