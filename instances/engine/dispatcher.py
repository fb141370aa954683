"""Turning approved requests into operations: at once when a request is approved, at its time when it is
scheduled for later, and — PostgreSQL being the truth and Redis only carrying work — by a periodic safety net.

- ``hand_over`` runs when an approval commits: a request that is due starts now; one meant for later is given
  to the RQ scheduler for its time.
- ``dispatch`` (every ``PORTAL_DISPATCH_INTERVAL`` seconds) starts what is due and was not started (Redis lost
  it, the instance was busy), re-enqueues queued operations whose RQ job vanished, and ends running operations
  whose worker died (no sign of life for ``PORTAL_OPERATION_STALE_AFTER``).
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from core.audit import AuditContext
from core.jobs import enqueue_at, job_exists, periodic
from core.messages import Message, msg
from instances.choices import InstanceStatus, OperationKind, OperationStatus, RequestKind, RequestStatus
from instances.engine.log import log_line
from instances.engine.runner import ENGINE, QUEUE, end_operation, enqueue_operation, finish_request, new_job_id
from instances.models import ChangeRequest, Cluster, Instance, Operation
from instances.models.instances import default_hostname

logger = logging.getLogger("instances.engine")

KIND_FOR_REQUEST = {
    RequestKind.CREATE: OperationKind.DEPLOY,
    RequestKind.UPDATE: OperationKind.UPGRADE,
    RequestKind.DELETE: OperationKind.DELETE,
    RequestKind.BACKUP: OperationKind.BACKUP,
    RequestKind.RESTORE: OperationKind.RESTORE,
}
BATCH = 200


@dataclass
class DispatchReport:
    started: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        return f"started {self.started}, requeued {self.requeued}, resumed {self.resumed}, recovered {self.recovered}"


@periodic("dispatch")
def dispatch(now: datetime.datetime | None = None) -> str:
    """The periodic safety net (see module docstring)."""
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
    if report.started or report.requeued or report.resumed or report.recovered:
        logger.info("dispatch: %s", report)
    return str(report)


def hand_over(request_pk: int) -> None:
    """After an approval commits: start the request now if it is due, or schedule its start for its time.

    Failing here loses nothing: the periodic dispatch starts whatever is due and was not started.
    """
    request = ChangeRequest.objects.filter(pk=request_pk).values("status", "scheduled_for").first()
    if request is None:
        return
    try:
        if request["status"] == RequestStatus.SCHEDULED and request["scheduled_for"]:
            enqueue_at(request["scheduled_for"], start_request, request_pk, job_id=f"start-request-{request_pk}")
        elif request["status"] == RequestStatus.APPROVED:
            start_request(request_pk)
    except (DatabaseError, OSError, RedisError):
        logger.warning("request %s: not handed over now; the dispatcher will start it", request_pk, exc_info=True)


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
                    # An upgrade or a creation deploys what was approved; a backup or deletion, what runs.
                    images=request.images if request.target_version_id else request.instance.images,
                    backup_id=request.backup_id,  # what a restore puts back
                )
        except IntegrityError:
            return None  # another operation became active on this instance meanwhile; next tick

        operation.rq_job_id = new_job_id(operation.pk)
        operation.save(update_fields=["rq_job_id"])
        request.mark_running(ENGINE)
        enqueue_operation(operation)
    return operation


def start_resync(instance: Instance) -> Operation | None:
    """A maintainer's full resync: re-apply every object of the instance at its version, and prune.

    None when the instance has no version yet, is deleted, or has an operation in progress.
    """
    if instance.current_version_id is None or not instance.accepts_requests:
        return None
    try:
        with transaction.atomic():
            return queue_full_deploy(instance)
    except IntegrityError:
        return None


def queue_full_deploy(instance: Instance) -> Operation:
    """Queue a deploy of the instance at its version that applies every object (IntegrityError when busy)."""
    return queue_instance_operation(instance, OperationKind.DEPLOY, full_resync=True)


def queue_instance_operation(instance: Instance, kind: str, **fields) -> Operation:
    """Queue an operation of ``kind`` that no request asked for, at the instance's current version and images
    (IntegrityError when another operation is active on the instance)."""
    operation = Operation.objects.create(
        kind=kind, instance=instance, target_version_id=instance.current_version_id, images=instance.images, **fields
    )
    operation.rq_job_id = new_job_id(operation.pk)
    operation.save(update_fields=["rq_job_id"])
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
                hostname=default_hostname(request.proposed_slug, cluster),
                cluster=cluster,
                status=InstanceStatus.PROVISIONING,
            )
    except IntegrityError:
        request.mark_running(ENGINE)
        text = msg("an instance named %(slug)s already exists")
        finish_request(request.pk, False, Message(text, {"slug": request.proposed_slug}))
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
    """Running operations that stopped beating lost their worker. They resume: queued again, they re-run from
    where they were (server-side apply is idempotent, steps done are skipped). After
    ``PORTAL_OPERATION_MAX_ATTEMPTS`` runs they end failed, with the reason."""
    stale = now - datetime.timedelta(seconds=settings.PORTAL_OPERATION_STALE_AFTER)
    for operation in Operation.objects.filter(status=OperationStatus.RUNNING, heartbeat_at__lt=stale):
        last_seen = f"{operation.heartbeat_at:%Y-%m-%d %H:%M:%S}"
        if operation.attempts < settings.PORTAL_OPERATION_MAX_ATTEMPTS:
            text = msg("the worker stopped responding (last sign of life %(time)s UTC); the operation resumes")
            line = log_line(Message(text, {"time": last_seen}), "warning")
            job_id = new_job_id(operation.pk)
            if operation.transition(
                AuditContext.engine(operation.pk),
                OperationStatus.QUEUED,
                fields={"rq_job_id": job_id, "queued_at": now, "log": [*operation.log, line]},
                only_from=(OperationStatus.RUNNING,),
            ):
                enqueue_operation(operation, on_commit=False)
                report.resumed.append(operation.pk)
            continue
        text = msg(
            "the worker stopped responding (last sign of life %(time)s UTC) %(attempts)s times; the operation "
            "was ended so the instance is not blocked; check the instance and request again"
        )
        message = Message(text, {"time": last_seen, "attempts": operation.attempts})
        if end_operation(operation.pk, OperationStatus.FAILED, message):
            report.recovered.append(operation.pk)
