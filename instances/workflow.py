"""Filing change requests: the one entry point shared by the web UI, the REST API and the instructions file.

Each function checks permissions and input again (forms and serializers are conveniences, not the guard),
creates the request, audits it and tells the maintainers once the transaction commits.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import AuditContext, record
from core.errors import Conflict, NotAllowed
from core.jobs import enqueue_on_commit
from core.models.organisations import can_request_for, is_maintainer
from instances.catalogue import resolve
from instances.choices import EXCLUSIVE_KINDS, BackupStatus, RequestKind, RequestSource
from instances.engine.dispatcher import hand_over
from instances.engine.rendering import render_preview
from instances.models import Application, ApplicationVersion, Backup, ChangeRequest, Instance
from instances.models.instances import SLUG_MAX_LENGTH, validate_dns_label
from instances.notifications import mail_on_commit, notify_reviewed, notify_submitted

# Names that would clash with the portal's own URLs (/instances/new/).
RESERVED_SLUGS = frozenset({"new"})
# A request cannot be scheduled further ahead than this: a typo in the year should not hide a request for ages.
MAX_SCHEDULE_AHEAD = datetime.timedelta(days=366)


def validate_schedule(scheduled_for: datetime.datetime | None, now: datetime.datetime | None = None) -> None:
    if scheduled_for is None:
        return
    now = now or timezone.now()
    if scheduled_for <= now:
        raise ValidationError({"scheduled_for": _("Choose a date and time in the future.")})
    if scheduled_for > now + MAX_SCHEDULE_AHEAD:
        raise ValidationError({"scheduled_for": _("Choose a date within the next year.")})


def validate_new_slug(slug: str, user=None) -> None:
    """A new instance name must be a free DNS label; the message says which rule failed.

    Names are global, so a taken name must be refused whoever took it; but a request of another organisation is
    not named to ``user`` (its number would tell them what another university asked for)."""
    if not slug:
        raise ValidationError({"slug": _("Give the instance a name.")})
    if len(slug) > SLUG_MAX_LENGTH:
        raise ValidationError(
            {"slug": _("At most %(max)d characters (this one has %(n)d).") % {"max": SLUG_MAX_LENGTH, "n": len(slug)}}
        )
    try:
        validate_dns_label(slug)
    except ValidationError as exc:
        raise ValidationError({"slug": exc.messages}) from exc
    if slug in RESERVED_SLUGS:
        raise ValidationError({"slug": _("%(slug)s is reserved; choose another name.") % {"slug": slug}})
    if Instance.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": _("An instance named %(slug)s already exists.") % {"slug": slug}})
    pending = ChangeRequest.objects.open().filter(kind=RequestKind.CREATE, proposed_slug=slug).first()
    if pending:
        if user is not None and ChangeRequest.objects.visible_to(user).filter(pk=pending.pk).exists():
            message = _("Request #%(id)s already asks for an instance named %(slug)s.")
            raise ValidationError({"slug": message % {"id": pending.pk, "slug": slug}})
        raise ValidationError({"slug": _("%(slug)s is already asked for; choose another name.") % {"slug": slug}})


def open_exclusive_request(instance: Instance) -> ChangeRequest | None:
    return ChangeRequest.objects.open().filter(instance=instance, kind__in=EXCLUSIVE_KINDS).first()


def _conflict_message(existing: ChangeRequest) -> str:
    return _("Request #%(id)s (%(kind)s, %(status)s) is already open for %(instance)s; wait for it or cancel it.") % {
        "id": existing.pk,
        "kind": existing.get_kind_display(),
        "status": existing.get_status_display(),
        "instance": existing.target_name,
    }


def _check_may_request(ctx: AuditContext, organisation) -> None:
    if ctx.user is not None and not can_request_for(ctx.user, organisation):
        raise NotAllowed(_("Only functional admins of %(org)s can file requests for it.") % {"org": organisation})


def _file(ctx: AuditContext, request: ChangeRequest, override: tuple[list, str] = ([], "")) -> ChangeRequest:
    """Save a new request, audit it, and tell maintainers after commit; races end as a clear conflict.

    ``override``: the blockers of a version a maintainer chose anyway, and their reason (audited with it)."""
    request.requested_by = ctx.user if ctx.user is not None else None
    request.requested_by_label = ctx.actor_label[:200]
    try:
        with transaction.atomic():
            request.save()
            record(ctx, "request.submitted", request, organisation=request.organisation, after=request.snapshot())
            if override[0]:
                _override(ctx, request, override[0], override[1].strip())
            if request.kind == RequestKind.BACKUP and not settings.PORTAL_BACKUP_NEEDS_APPROVAL:
                request.approve_automatically(AuditContext.system("backups need no approval"))
                transaction.on_commit(lambda: hand_over(request.pk), robust=True)
            else:
                mail_on_commit(notify_submitted, request.pk)
            if request.kind == RequestKind.UPDATE:
                # The reviewer's preview is rendered now, in the background, not when they open the request.
                enqueue_on_commit(render_preview, request.pk)
    except IntegrityError as exc:
        # Another request slipped in between our check and the insert; the database constraint caught it.
        existing = open_exclusive_request(request.instance) if request.instance_id else None
        if existing:
            raise Conflict(_conflict_message(existing)) from exc
        raise Conflict(_("A request for %(name)s is already open.") % {"name": request.target_name}) from exc
    return request


def _blocked_message(version: ApplicationVersion, blockers: list[dict]) -> str:
    from registry.policy import describe

    return _("%(version)s cannot be deployed: %(why)s.") % {
        "version": version.version,
        "why": "; ".join(describe(blocker) for blocker in blockers),
    }


def _override(ctx: AuditContext, request: ChangeRequest, blockers: list[dict], reason: str) -> None:
    """A maintainer deploys a version the scan policy blocks, and says why: audited with what blocked it."""
    record(
        ctx,
        "version.override",
        request,
        organisation=request.organisation,
        after={"version": request.target_version.version, "blockers": blockers},
        reason=reason,
    )


def approve(ctx: AuditContext, request: ChangeRequest, reason: str = "") -> None:
    """A maintainer approves ``request``; once that commits, the requester hears of it, and the request starts
    at once if it is due, or is scheduled for its time.

    A request for a version has its images pinned now, to the digests their tags point to: what was approved is
    what runs. A version the scan policy blocks (now) is approved only with a reason, audited as an override.
    """
    with transaction.atomic():
        if request.target_version_id:
            images, blockers = resolve(request.application, request.target_version)
            if blockers:
                if not (reason or "").strip():
                    message = _blocked_message(request.target_version, blockers)
                    raise Conflict(message + " " + _("Give a reason to approve it anyway."), field="reason")
                _override(ctx, request, blockers, reason.strip())
            request.images = images
            ChangeRequest.objects.filter(pk=request.pk).update(images=images)
        request.approve(ctx, reason=reason)
    mail_on_commit(notify_reviewed, request.pk)  # first, so that it tells of the approval, not of the start
    transaction.on_commit(lambda: hand_over(request.pk), robust=True)


def reject(ctx: AuditContext, request: ChangeRequest, reason: str) -> None:
    """A maintainer rejects ``request`` with a reason; once that commits, the requester hears of it."""
    request.reject(ctx, reason)
    mail_on_commit(notify_reviewed, request.pk)


def _check_version_available(
    ctx: AuditContext, version: ApplicationVersion, application: Application, override_reason: str = ""
) -> list[dict]:
    """The version exists and may be deployed; a maintainer may choose a blocked one with a reason (the blockers
    are returned, to be audited with the request)."""
    if version.application_id != application.pk or not version.is_available:
        message = _("%(v)s is not an available version of %(app)s.") % {"v": version, "app": application}
        raise ValidationError({"version": message})
    if version.deployable:
        return []
    if not override_reason.strip() or ctx.user is None or not is_maintainer(ctx.user):
        raise ValidationError({"version": _blocked_message(version, version.blockers)})
    return version.blockers


def request_create(
    ctx: AuditContext,
    *,
    organisation,
    application: Application,
    slug: str,
    version: ApplicationVersion,
    scheduled_for=None,
    comment: str = "",
    source: str = RequestSource.WEB,
    override_reason: str = "",
) -> ChangeRequest:
    """Ask for a new instance of ``application`` named ``slug`` for ``organisation``."""
    _check_may_request(ctx, organisation)
    slug = (slug or "").strip()
    validate_new_slug(slug, ctx.user)
    blockers = _check_version_available(ctx, version, application, override_reason)
    validate_schedule(scheduled_for)
    return _file(
        ctx,
        ChangeRequest(
            kind=RequestKind.CREATE,
            organisation=organisation,
            application=application,
            proposed_slug=slug,
            target_version=version,
            scheduled_for=scheduled_for,
            comment=comment,
            source=source,
        ),
        override=(blockers, override_reason),
    )


def _check_instance_open(ctx: AuditContext, instance: Instance) -> None:
    """The actor may file for the instance's organisation, and the instance still takes requests."""
    _check_may_request(ctx, instance.organisation)
    if not instance.accepts_requests:
        raise Conflict(_("Instance %(slug)s is deleted or being deleted.") % {"slug": instance.slug})


def _file_for_instance(
    ctx: AuditContext, kind: str, instance: Instance, override: tuple[list, str] = ([], ""), **fields
) -> ChangeRequest:
    """File a request about an existing instance (an upgrade, a deletion, a backup)."""
    request = ChangeRequest(
        kind=kind, organisation=instance.organisation, application=instance.application, instance=instance, **fields
    )
    return _file(ctx, request, override)


def _check_no_exclusive(instance: Instance) -> None:
    existing = open_exclusive_request(instance)
    if existing:
        raise Conflict(_conflict_message(existing))


def request_update(
    ctx: AuditContext,
    instance: Instance,
    *,
    version: ApplicationVersion,
    scheduled_for=None,
    comment: str = "",
    source: str = RequestSource.WEB,
    override_reason: str = "",
) -> ChangeRequest:
    """Ask to upgrade ``instance`` to a newer ``version`` now or at ``scheduled_for``."""
    _check_instance_open(ctx, instance)
    blockers = _check_version_available(ctx, version, instance.application, override_reason)
    if not version.is_newer_than(instance.current_version):
        raise ValidationError(
            {"version": _("Choose a version newer than %(current)s.") % {"current": instance.current_version}}
        )
    validate_schedule(scheduled_for)
    _check_no_exclusive(instance)
    return _file_for_instance(
        ctx,
        RequestKind.UPDATE,
        instance,
        target_version=version,
        scheduled_for=scheduled_for,
        comment=comment,
        source=source,
        override=(blockers, override_reason),
    )


def request_delete(
    ctx: AuditContext,
    instance: Instance,
    *,
    scheduled_for=None,
    comment: str = "",
    source: str = RequestSource.WEB,
) -> ChangeRequest:
    """Ask to delete ``instance`` (after a final backup) now or at ``scheduled_for``."""
    _check_instance_open(ctx, instance)
    validate_schedule(scheduled_for)
    _check_no_exclusive(instance)
    return _file_for_instance(
        ctx, RequestKind.DELETE, instance, scheduled_for=scheduled_for, comment=comment, source=source
    )


def request_backup(
    ctx: AuditContext, instance: Instance, *, comment: str = "", source: str = RequestSource.WEB
) -> ChangeRequest:
    """Ask for an on-demand backup; approved at once unless PORTAL_BACKUP_NEEDS_APPROVAL is set."""
    _check_instance_open(ctx, instance)
    if ChangeRequest.objects.open().filter(instance=instance, kind=RequestKind.BACKUP).exists():
        raise Conflict(_("A backup of %(slug)s is already pending.") % {"slug": instance.slug})
    return _file_for_instance(ctx, RequestKind.BACKUP, instance, comment=comment, source=source)


def restorable_backups(instance: Instance):
    """The backups a restore of ``instance`` may choose: its verified ones, newest first."""
    return instance.backups.verified()


def request_restore(
    ctx: AuditContext,
    instance: Instance,
    *,
    backup: Backup,
    scheduled_for=None,
    comment: str = "",
    source: str = RequestSource.WEB,
) -> ChangeRequest:
    """Ask to put ``backup`` (a verified backup of ``instance``) back into its database, now or at
    ``scheduled_for``. Exclusive like an upgrade: the restore replaces what the database holds."""
    _check_instance_open(ctx, instance)
    if backup.instance_id != instance.pk:
        raise ValidationError({"backup": _("This backup is not one of %(slug)s.") % {"slug": instance.slug}})
    if backup.status != BackupStatus.VERIFIED:
        raise ValidationError(
            {"backup": _("Only a verified backup can be restored (this one is %(status)s).")
             % {"status": backup.get_status_display()}}
        )  # fmt: skip
    if not instance.application.restore_cronjob:
        raise Conflict(_("%(app)s has no restore job configured.") % {"app": instance.application})
    validate_schedule(scheduled_for)
    _check_no_exclusive(instance)
    return _file_for_instance(
        ctx, RequestKind.RESTORE, instance, backup=backup, scheduled_for=scheduled_for, comment=comment, source=source
    )
