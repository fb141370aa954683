"""The periodic dispatcher: PostgreSQL is the truth, Redis only carries work.

Every ``PORTAL_DISPATCH_INTERVAL`` seconds it
- starts approved requests whose time has come (one operation per instance at a time),
- re-enqueues queued operations whose RQ job vanished (Redis flushed or restarted),
- ends running operations whose worker died (no sign of life for ``PORTAL_OPERATION_STALE_AFTER``).
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.jobs import job_exists
from instances.choices import InstanceStatus, OperationKind, OperationStatus, RequestKind, RequestStatus
from instances.engine.runner import ENGINE, QUEUE, end_operation, enqueue_operation, finish_request, new_job_id
from instances.models import ChangeRequest, Cluster, Instance, Operation

logger = logging.getLogger("instances.engine")

KIND_FOR_REQUEST = {
    RequestKind.CREATE: OperationKind.DEPLOY,
    RequestKind.UPDATE: OperationKind.UPGRADE,
    RequestKind.DELETE: OperationKind.DELETE,
    RequestKind.BACKUP: OperationKind.BACKUP,
}
BATCH = 200


@dataclass
class DispatchReport:
    started: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        return f"started {self.started}, requeued {self.requeued}, recovered {self.recovered}"


def dispatch(now: datetime.datetime | None = None) -> str:
    """The periodic job (see module docstring)."""
    now = now or timezone.now()
    report = DispatchReport()
    recover_dead_operations(now, report)
    requeue_lost_operations(now, report)
    for request_pk in (
        ChangeRequest.objects.due(now).order_by("scheduled_for", "created_at").values_list("pk", flat=True)[:BATCH]
    ):
        operation = start_request(request_pk, now)
        if operation:
            report.started.append(operation.pk)
    if report.started or report.requeued or report.recovered:
        logger.info("dispatch: %s", report)
    return str(report)


def start_request(request_pk: int, now: datetime.datetime | None = None) -> Operation | None:
    """Turn one due request into an operation; skipped (for the next tick) while the instance is busy."""
    now = now or timezone.now()
    with transaction.atomic():
        request = (
            ChangeRequest.objects.select_for_update(skip_locked=True)
            .filter(pk=request_pk, status__in=(RequestStatus.APPROVED, RequestStatus.SCHEDULED))
            .first()
        )
        if request is None or (request.scheduled_for and request.scheduled_for > now):
            return None
        if request.kind == RequestKind.CREATE and request.instance_id is None:
            instance = _create_instance(request)
            if instance is None:
                return None
        elif Operation.objects.filter(instance_id=request.instance_id, status__in=OperationStatus.active()).exists():
            return None
        try:
            with transaction.atomic():
                operation = Operation.objects.create(
                    kind=KIND_FOR_REQUEST[request.kind],
                    instance_id=request.instance_id,
                    request=request,
                    target_version=request.target_version or request.instance.current_version,
                )
        except IntegrityError:
            return None  # another operation became active on this instance meanwhile; next tick

        operation.rq_job_id = new_job_id(operation.pk)
        operation.save(update_fields=["rq_job_id"])
        request.mark_running(ENGINE)
        enqueue_operation(operation)
    return operation


def _create_instance(request: ChangeRequest) -> Instance | None:
    """The instance a create request asked for, on the default cluster."""
    cluster = Cluster.objects.filter(is_default=True).first() or Cluster.objects.order_by("pk").first()
    if cluster is None:
        logger.warning("request %s waits: no cluster is configured", request.pk)
        return None
    try:
        with transaction.atomic():
            instance = Instance.objects.create(
                organisation=request.organisation,
                application=request.application,
                slug=request.proposed_slug,
                hostname=f"{request.proposed_slug}.{cluster.domain}",
                cluster=cluster,
                status=InstanceStatus.PROVISIONING,
            )
    except IntegrityError:
        request.mark_running(ENGINE)
        finish_request(request.pk, False, f"an instance named {request.proposed_slug} already exists")
        return None
    request.instance = instance
    request.save(update_fields=["instance", "updated_at"])
    return instance


def requeue_lost_operations(now: datetime.datetime, report: DispatchReport) -> None:
    """Queued operations whose RQ job is gone (Redis flushed): enqueue them again."""
    grace = now - datetime.timedelta(seconds=settings.PORTAL_DISPATCH_INTERVAL)
    for operation in Operation.objects.filter(status=OperationStatus.QUEUED, queued_at__lte=grace):
        if operation.rq_job_id and job_exists(operation.rq_job_id, QUEUE):
            continue
        operation.rq_job_id = new_job_id(operation.pk)
        Operation.objects.filter(pk=operation.pk, status=OperationStatus.QUEUED).update(rq_job_id=operation.rq_job_id)
        enqueue_operation(operation, on_commit=False)
        report.requeued.append(operation.pk)


def recover_dead_operations(now: datetime.datetime, report: DispatchReport) -> None:
    """Running operations that stopped beating lost their worker: they end failed, with the reason."""
    stale = now - datetime.timedelta(seconds=settings.PORTAL_OPERATION_STALE_AFTER)
    for operation in Operation.objects.filter(status=OperationStatus.RUNNING, heartbeat_at__lt=stale):
        message = (
            f"the worker stopped responding (last sign of life {operation.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC); "
            "the operation was ended so the instance is not blocked; check the instance and request again"
        )
        line = {"time": now.isoformat(), "level": "error", "message": message}
        if end_operation(operation.pk, OperationStatus.FAILED, message, log_line=line):
            report.recovered.append(operation.pk)
