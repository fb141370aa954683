"""Change requests and their guarded state machine.

A request is what a functional admin (or the API, or the legacy instructions file) asks for. It changes status
only through the methods below; each checks the transition table under a row lock, so two maintainers
approving at once end with exactly one approval, and each transition appends an audit event.
"""

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core import messages
from core.audit import AuditContext, record
from core.errors import InvalidTransition, NotAllowed
from core.messages import Message
from core.models.organisations import TenantQuerySet
from instances.choices import EXCLUSIVE_KINDS, REQUEST_TRANSITIONS, RequestKind, RequestSource, RequestStatus
from instances.models.instances import SLUG_MAX_LENGTH, validate_dns_label


class ChangeRequestQuerySet(TenantQuerySet):
    def open(self) -> "ChangeRequestQuerySet":
        return self.filter(status__in=RequestStatus.open())

    def awaiting_review(self) -> "ChangeRequestQuerySet":
        return self.filter(status=RequestStatus.SUBMITTED)

    def due(self, now=None) -> "ChangeRequestQuerySet":
        """Approved or scheduled requests whose time has come."""
        now = now or timezone.now()
        return self.filter(status__in=(RequestStatus.APPROVED, RequestStatus.SCHEDULED)).filter(
            Q(scheduled_for__isnull=True) | Q(scheduled_for__lte=now)
        )


class ChangeRequest(models.Model):
    """A request to create, upgrade, back up, restore or delete an instance; it needs a maintainer's approval."""

    kind = models.CharField(_("kind"), max_length=16, choices=RequestKind.choices)
    organisation = models.ForeignKey(
        "core.Organisation", on_delete=models.PROTECT, related_name="change_requests", verbose_name=_("organisation")
    )
    application = models.ForeignKey(
        "instances.Application", on_delete=models.PROTECT, related_name="+", verbose_name=_("application")
    )
    instance = models.ForeignKey(
        "instances.Instance",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="change_requests",
        verbose_name=_("instance"),
    )
    proposed_slug = models.CharField(
        _("instance name"), max_length=SLUG_MAX_LENGTH, blank=True, validators=[validate_dns_label]
    )
    target_version = models.ForeignKey(
        "instances.ApplicationVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("target version"),
    )
    # The verified backup a restore puts back.
    backup = models.ForeignKey(
        "instances.Backup",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="restore_requests",
        verbose_name=_("backup"),
    )
    scheduled_for = models.DateTimeField(
        _("scheduled for"), null=True, blank=True, help_text=_("Leave empty to run as soon as it is approved.")
    )
    comment = models.TextField(_("comment"), blank=True, max_length=2000)
    source = models.CharField(_("source"), max_length=16, choices=RequestSource.choices, default=RequestSource.WEB)
    status = models.CharField(
        _("status"), max_length=16, choices=RequestStatus.choices, default=RequestStatus.SUBMITTED, db_index=True
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="change_requests",
        verbose_name=_("requested by"),
    )
    requested_by_label = models.CharField(_("requested by"), max_length=200)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reviewer"),
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    reason = models.TextField(_("reason"), blank=True, max_length=2000)
    result = models.TextField(_("result"), blank=True)
    # The result as a message to translate for each reader (see core.messages); ``result`` holds it in English.
    result_message = models.JSONField(_("result (translatable)"), null=True, blank=True, editable=False)
    # Image placeholder -> {"repository", "tag", "digest"}: the version's images resolved at approval, so that
    # what was approved is what runs, even if a tag is pushed again later.
    images = models.JSONField(_("images"), default=dict, blank=True, editable=False)
    # What approving would change on the cluster, rendered once and kept with the key it was rendered for.
    preview = models.JSONField(_("preview"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # Where a request filed from an instruction file came from: its line, the git source and commit (none for a
    # file uploaded or sent to the API). A source's next import cancels its requests whose line was removed.
    instruction_line = models.PositiveIntegerField(_("instruction line"), null=True, blank=True, editable=False)
    instruction_source = models.ForeignKey(
        "instances.InstructionSource",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="requests",
        verbose_name=_("instruction source"),
        editable=False,
    )
    instruction_commit = models.CharField(_("instruction commit"), max_length=64, blank=True, editable=False)

    objects = ChangeRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("change request")
        verbose_name_plural = _("change requests")
        permissions = [("approve_changerequest", _("Can approve or reject change requests"))]
        constraints = [
            # Two open upgrades/deletions of one instance would race; the database refuses the second.
            models.UniqueConstraint(
                fields=["instance"],
                condition=Q(kind__in=EXCLUSIVE_KINDS, status__in=RequestStatus.open()),
                name="changerequest_one_open_exclusive_per_instance",
            ),
            models.UniqueConstraint(
                fields=["proposed_slug"],
                condition=Q(kind=RequestKind.CREATE, status__in=RequestStatus.open()),
                name="changerequest_one_open_create_per_slug",
            ),
            models.CheckConstraint(
                condition=(Q(kind=RequestKind.CREATE) & ~Q(proposed_slug="") & Q(target_version__isnull=False))
                | (~Q(kind=RequestKind.CREATE) & Q(instance__isnull=False)),
                name="changerequest_kind_has_its_target",
            ),
            models.CheckConstraint(
                condition=~Q(kind=RequestKind.UPDATE) | Q(target_version__isnull=False),
                name="changerequest_update_has_version",
            ),
            models.CheckConstraint(
                condition=Q(kind=RequestKind.RESTORE, backup__isnull=False)
                | (~Q(kind=RequestKind.RESTORE) & Q(backup__isnull=True)),
                name="changerequest_restore_has_backup",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()} {self.target_name}"

    def get_absolute_url(self) -> str:
        return reverse("instances:request_detail", kwargs={"pk": self.pk})

    @property
    def target_name(self) -> str:
        """The instance the request is about (its proposed name for a creation)."""
        return self.instance.slug if self.instance_id else self.proposed_slug

    @property
    def is_open(self) -> bool:
        return self.status in RequestStatus.open()

    @property
    def is_cancellable(self) -> bool:
        return self.status in RequestStatus.cancellable()

    def snapshot(self) -> dict:
        """What the audit trail records of a request."""
        return {
            "status": self.status,
            "kind": self.kind,
            "target": self.target_name,
            "target_version": self.target_version.version if self.target_version_id else None,
            "scheduled_for": self.scheduled_for.isoformat() if self.scheduled_for else None,
        }

    # --- permission predicates (used by views to decide which buttons to show) -------------------------

    def can_review(self, user) -> bool:
        from core.models.organisations import is_maintainer

        return is_maintainer(user) and self.requested_by_id != user.pk

    def can_cancel(self, user) -> bool:
        from core.models.organisations import is_maintainer

        return user.is_authenticated and (is_maintainer(user) or self.requested_by_id == user.pk)

    # --- guarded transitions ---------------------------------------------------------------------------

    def _transition(self, ctx: AuditContext, to: str, *, reason: str = "", fields: dict | None = None) -> None:
        """Move to ``to`` if the transition table allows it, under a row lock; record an audit event."""
        with transaction.atomic():
            locked = type(self).objects.select_for_update().get(pk=self.pk)
            if to not in REQUEST_TRANSITIONS[locked.status]:
                raise InvalidTransition(
                    _("Request #%(id)s is %(status)s and cannot become %(to)s.")
                    % {"id": locked.pk, "status": locked.get_status_display(), "to": RequestStatus(to).label},
                    current=locked.status,
                )
            before = locked.snapshot()
            locked.status = to
            for name, value in (fields or {}).items():
                setattr(locked, name, value)
            locked.save(update_fields=["status", "updated_at", *(fields or {})])
            record(
                ctx,
                f"request.{to}",
                locked,
                organisation=locked.organisation,
                before=before,
                after=locked.snapshot(),
                reason=reason,
            )
        # Keep the caller's object in step with the row.
        for name in ["status", "updated_at", *(fields or {})]:
            setattr(self, name, getattr(locked, name))

    def approve(self, ctx: AuditContext, reason: str = "") -> None:
        """A maintainer accepts the request; it becomes scheduled when it is meant for later."""
        self._check_reviewer(ctx)
        now = timezone.now()
        with transaction.atomic():
            self._transition(
                ctx, RequestStatus.APPROVED, reason=reason, fields={"reviewer": ctx.user, "reviewed_at": now}
            )
            if self.scheduled_for and self.scheduled_for > now:
                self._transition(ctx, RequestStatus.SCHEDULED)

    approve.alters_data = True

    def reject(self, ctx: AuditContext, reason: str) -> None:
        """A maintainer refuses the request and says why."""
        self._check_reviewer(ctx)
        if not (reason or "").strip():
            raise InvalidTransition(_("A reason is required to reject a request."), field="reason")
        with transaction.atomic():
            self._transition(
                ctx,
                RequestStatus.REJECTED,
                reason=reason.strip(),
                fields={"reviewer": ctx.user, "reviewed_at": timezone.now(), "reason": reason.strip()},
            )

    reject.alters_data = True

    def cancel(self, ctx: AuditContext, reason: str = "") -> None:
        """The requester or a maintainer withdraws the request before it starts."""
        if ctx.user is not None and not self.can_cancel(ctx.user):
            raise NotAllowed(_("Only the requester or a maintainer can cancel this request."))
        fields = {"finished_at": timezone.now()}
        if reason.strip():
            fields["reason"] = reason.strip()
        self._transition(ctx, RequestStatus.CANCELLED, reason=reason.strip(), fields=fields)

    cancel.alters_data = True

    def schedule(self, ctx: AuditContext) -> None:
        self._transition(ctx, RequestStatus.SCHEDULED)

    schedule.alters_data = True

    def mark_running(self, ctx: AuditContext) -> None:
        self._transition(ctx, RequestStatus.RUNNING, fields={"started_at": timezone.now()})

    mark_running.alters_data = True

    def mark_succeeded(self, ctx: AuditContext, result: Message | str = "") -> None:
        self._transition(ctx, RequestStatus.SUCCEEDED, fields={"finished_at": timezone.now(), **_result(result)})

    mark_succeeded.alters_data = True

    def mark_failed(self, ctx: AuditContext, result: Message | str) -> None:
        fields = {"finished_at": timezone.now(), **_result(result)}
        self._transition(ctx, RequestStatus.FAILED, reason=fields["result"], fields=fields)

    mark_failed.alters_data = True

    def approve_automatically(self, ctx: AuditContext) -> None:
        """Approval without a reviewer, for the kinds the settings exempt from review (on-demand backups)."""
        self._transition(ctx, RequestStatus.APPROVED)

    approve_automatically.alters_data = True

    @property
    def result_display(self) -> str:
        """The result in the reader's language."""
        return messages.render(self.result_message, self.result)

    def _check_reviewer(self, ctx: AuditContext) -> None:
        from core.models.organisations import is_maintainer

        if ctx.user is None or not is_maintainer(ctx.user):
            raise NotAllowed(_("Only maintainers can approve or reject requests."))
        if self.requested_by_id is not None and self.requested_by_id == ctx.user.pk:
            raise NotAllowed(_("You cannot review your own request; another maintainer must."))


def _result(result: Message | str) -> dict:
    """The fields that store a result: English text, and the message to translate when it is one."""
    if isinstance(result, Message):
        return {"result": result.english, "result_message": result.as_json()}
    return {"result": result, "result_message": None}
