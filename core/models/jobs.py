"""Runs of the periodic jobs (dispatch, status sync, backup sync, cluster checks): when, how long, what came out."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class JobRunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class Timed:
    """Mixin of the models that record a run with ``started_at`` and ``finished_at``."""

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class JobRun(Timed, models.Model):
    """One run of a periodic job, recorded like an operation: start, end, result or error.

    Written by ``core.jobs.periodic``; the traceback of a failure goes to the server log, only its summary here.
    Old runs are deleted after ``PORTAL_JOB_HISTORY_DAYS``.
    """

    name = models.CharField(_("job"), max_length=100)
    status = models.CharField(_("status"), max_length=16, choices=JobRunStatus.choices, default=JobRunStatus.RUNNING)
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    result = models.TextField(_("result"), blank=True)
    error = models.TextField(_("error"), blank=True)
    rq_job_id = models.CharField(_("job id"), max_length=100, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")
        indexes = [models.Index(fields=["name", "-started_at"], name="jobrun_name_started_idx")]

    def __str__(self) -> str:
        return f"{self.name} {self.started_at:%Y-%m-%d %H:%M:%S} ({self.status})"
