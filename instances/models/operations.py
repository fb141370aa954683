"""Operations (one row per background run) and rollout snapshots."""

from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core import messages
from core.models.jobs import Timed
from core.transitions import GuardedStatus
from instances.choices import (
    OPERATION_TRANSITIONS,
    OperationKind,
    OperationStatus,
    RolloutState,
)


class Operation(Timed, GuardedStatus):
    """One background run against a cluster: what was rendered, what was applied, what happened.

    History is read from here, never from RQ. At most one queued or running operation per instance (a database
    constraint), so two workers never touch the same namespace at once. Its status changes only through
    :meth:`transition` (table ``OPERATION_TRANSITIONS``), each change audited.
    """

    TRANSITIONS = OPERATION_TRANSITIONS
    audit_name = "operation"
    audit_organisation = "instance__organisation_id"
    audit_fields = ("error",)

    kind = models.CharField(_("kind"), max_length=16, choices=OperationKind.choices)
    instance = models.ForeignKey(
        "instances.Instance", on_delete=models.CASCADE, related_name="operations", verbose_name=_("instance")
    )
    request = models.ForeignKey(
        "instances.ChangeRequest",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="operations",
        verbose_name=_("request"),
    )
    target_version = models.ForeignKey(
        "instances.ApplicationVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("target version"),
    )
    # The backup a restore or a restore drill reads.
    backup = models.ForeignKey(
        "instances.Backup",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="restores",
        verbose_name=_("backup restored"),
    )
    # The images the operation deploys (placeholder -> {"repository", "tag", "digest"}), from its request or, for
    # a resync, from what the instance runs; empty means the version's tags (an application without registry).
    images = models.JSONField(_("images"), default=dict, blank=True, editable=False)
    status = models.CharField(
        _("status"), max_length=16, choices=OperationStatus.choices, default=OperationStatus.QUEUED, db_index=True
    )
    rq_job_id = models.CharField(_("job id"), max_length=64, blank=True)
    full_resync = models.BooleanField(
        _("full resync"),
        default=False,
        help_text=_("Apply every object again and delete what is no longer rendered, not only what changed."),
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    queued_at = models.DateTimeField(_("queued at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("last sign of life"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    log = models.JSONField(_("log"), default=list, blank=True)
    manifests = models.TextField(_("rendered manifests"), blank=True)
    manifests_sha256 = models.CharField(_("manifests hash"), max_length=64, blank=True)
    diff = models.TextField(_("diff against the previous manifests"), blank=True)
    error = models.TextField(_("error"), blank=True)
    # The error as a message to translate for each reader (see core.messages); ``error`` holds it in English.
    error_message = models.JSONField(_("error (translatable)"), null=True, blank=True, editable=False)
    # What the operation has done so far (backup taken, version last applied, rollback begun): a run resumed
    # after its worker died skips what is done.
    progress = models.JSONField(_("progress"), default=dict, blank=True, editable=False)
    # Of a crash only: the traceback, for maintainers (viewers see the reference in ``error``).
    traceback = models.TextField(_("traceback"), blank=True, editable=False)

    class Meta:
        ordering = ["-queued_at", "-id"]
        verbose_name = _("operation")
        verbose_name_plural = _("operations")
        constraints = [
            models.UniqueConstraint(
                fields=["instance"],
                condition=Q(status__in=OperationStatus.active()),
                name="operation_one_active_per_instance",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.instance} #{self.pk}"

    def audit_label(self) -> str:
        return f"operation #{self.pk}"

    @property
    def error_display(self) -> str:
        """The error in the reader's language."""
        return messages.render(self.error_message, self.error)

    def get_absolute_url(self) -> str:
        return reverse("instances:operation_detail", kwargs={"pk": self.pk})

    @property
    def is_active(self) -> bool:
        return self.status in OperationStatus.active()


class RolloutSnapshot(models.Model):
    """The last observed rollout state of one workload of an instance (kubectl rollout status, stored)."""

    instance = models.ForeignKey("instances.Instance", on_delete=models.CASCADE, related_name="rollout_snapshots")
    kind = models.CharField(max_length=32)
    component = models.CharField(max_length=100)
    desired = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    ready = models.PositiveIntegerField(default=0)
    available = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=16, choices=RolloutState.choices, default=RolloutState.PROGRESSING)
    message = models.TextField(blank=True)
    conditions = models.JSONField(default=list, blank=True)
    images = models.JSONField(default=list, blank=True)
    observed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind", "component"]
        verbose_name = _("rollout snapshot")
        verbose_name_plural = _("rollout snapshots")
        constraints = [
            models.UniqueConstraint(fields=["instance", "kind", "component"], name="rollout_one_per_component")
        ]

    def __str__(self) -> str:
        return f"{self.instance} {self.kind}/{self.component}: {self.state}"
