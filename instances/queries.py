"""Read-only queries of the browser UI: annotations that keep the number of SQL queries of a page constant.

Lists show, for each row, facts that live in other rows (an instance's last request, a request's conflicts).
They are computed by the database as subqueries of the list's one query instead of one query per row.
"""

import datetime

from django.conf import settings
from django.db.models import BooleanField, Case, CharField, Exists, Max, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.translation import gettext as _

from core.models import AuditEvent
from instances.choices import BackupStatus, InstanceStatus, OperationKind, OperationStatus, RequestKind, RequestStatus
from instances.models import Backup, ChangeRequest, Instance, Operation

CHANGE_REQUEST_RELATED = (
    "organisation",
    "application",
    "instance",
    "instance__current_version",
    "target_version",
    "backup",
    "requested_by",
    "reviewer",
)


def instances_with_last_request(queryset):
    """Instances with their organisation, application and version, and the id/kind/status of their last request."""
    last = ChangeRequest.objects.filter(instance=OuterRef("pk")).order_by("-created_at", "-pk")
    return queryset.select_related("organisation", "application", "current_version").annotate(
        last_request_id=Subquery(last.values("pk")[:1]),
        last_request_kind=Subquery(last.values("kind")[:1]),
        last_request_status=Subquery(last.values("status")[:1]),
    )


def instances_with_last_drill(queryset):
    """Instances with ``last_drill_id``, ``last_drill_status`` and ``last_drill_at``: their last finished restore
    drill (an operation), as subqueries of the list's one query."""
    last = Operation.objects.filter(
        instance=OuterRef("pk"), kind=OperationKind.DRILL, status__in=OperationStatus.terminal()
    ).order_by("-finished_at", "-pk")
    return queryset.annotate(
        last_drill_id=Subquery(last.values("pk")[:1]),
        last_drill_status=Subquery(last.values("status")[:1]),
        last_drill_at=Subquery(last.values("finished_at")[:1]),
    )


def backup_cutoff() -> datetime.datetime:
    """The oldest a verified backup may be before the instance is "backup overdue"."""
    return timezone.now() - datetime.timedelta(hours=settings.PORTAL_BACKUP_MAX_AGE_HOURS)


def instances_with_backup_health(queryset):
    """Instances with ``last_backup_at`` (their last verified backup's end) and ``backup_overdue``.

    An instance that is not deleted is overdue when it has no verified backup that finished within
    ``PORTAL_BACKUP_MAX_AGE_HOURS``. Both are subqueries of the list's one query.
    """
    last_ok = (
        Backup.objects.filter(instance=OuterRef("pk"), status=BackupStatus.VERIFIED)
        .values("instance")
        .annotate(last=Max("finished_at"))
        .values("last")
    )
    return queryset.annotate(last_backup_at=Subquery(last_ok[:1])).annotate(
        backup_overdue=Case(
            When(status=InstanceStatus.DELETED, then=Value(False)),
            When(last_backup_at__gte=backup_cutoff(), then=Value(False)),
            default=Value(True),
            output_field=BooleanField(),
        )
    )


def backup_overdue(instance: Instance) -> bool:
    """The same rule for one instance, in one query."""
    if instance.is_deleted:
        return False
    return not instance.backups.filter(status=BackupStatus.VERIFIED, finished_at__gte=backup_cutoff()).exists()


def requests_with_conflicts(queryset):
    """Change requests with what a reviewer needs to spot a clash, annotated in the same query.

    ``other_open_id`` is another open request on the same instance; ``slug_taken`` says an instance already
    uses the name a creation asks for. Version and status clashes are read from the related rows.
    """
    other_open = (
        ChangeRequest.objects.filter(instance_id=OuterRef("instance_id"), status__in=RequestStatus.open())
        .exclude(pk=OuterRef("pk"))
        .order_by("created_at", "pk")
    )
    return queryset.select_related(*CHANGE_REQUEST_RELATED).annotate(
        other_open_id=Subquery(other_open.values("pk")[:1]),
        slug_taken=Exists(Instance.objects.filter(slug=OuterRef("proposed_slug"))),
    )


def conflicts_of(request: ChangeRequest) -> list[str]:
    """Why approving ``request`` now may go wrong, as sentences; empty when nothing clashes.

    Only requests that have not started are checked: once running, the instance a creation made is no clash.
    ``request`` must come from :func:`requests_with_conflicts`.
    """
    if request.status not in RequestStatus.cancellable():
        return []
    conflicts = []
    if getattr(request, "other_open_id", None):
        conflicts.append(_("Request #%(id)s is also open on this instance.") % {"id": request.other_open_id})
    if request.kind == RequestKind.CREATE and getattr(request, "slug_taken", False):
        conflicts.append(_("An instance named %(slug)s already exists.") % {"slug": request.proposed_slug})
    instance = request.instance if request.instance_id else None
    if instance is not None and instance.status in (InstanceStatus.DELETING, InstanceStatus.DELETED):
        conflicts.append(_("The instance is deleted or being deleted."))
    version = request.target_version if request.target_version_id else None
    if version is not None:
        if not version.is_available:
            conflicts.append(_("Version %(v)s is no longer available.") % {"v": version})
        if (
            request.kind == RequestKind.UPDATE
            and instance is not None
            and instance.current_version_id
            and not version.is_newer_than(instance.current_version)
        ):
            conflicts.append(
                _("%(v)s is not newer than the current version %(current)s any more.")
                % {"v": version, "current": instance.current_version}
            )
    return conflicts


def instance_requests(instance: Instance):
    """Every request about ``instance``, including the creation that asked for its name."""
    return ChangeRequest.objects.filter(
        Q(instance=instance)
        | Q(kind=RequestKind.CREATE, proposed_slug=instance.slug, organisation_id=instance.organisation_id)
    )


def instance_audit_events(instance: Instance, user, limit: int = 100):
    """Audit events about ``instance`` and its requests, newest first, in one query."""
    request_ids = instance_requests(instance).annotate(pk_text=Cast("pk", CharField())).values("pk_text")
    return (
        AuditEvent.objects.visible_to(user)
        .filter(
            Q(target_type=Instance._meta.label_lower, target_id=str(instance.pk))
            | Q(target_type=ChangeRequest._meta.label_lower, target_id__in=request_ids)
        )
        .order_by("-created_at", "-id")[:limit]
    )
