"""Running an operation: claim it, do it, end it — the one job function the worker executes.

start → run → finish, as NetBox's JobRunner: an expected failure (``JobFailed``, a permanent cluster error,
a Kustomize error) ends the operation "failed" with its message; a transient cluster error (409, 429, 5xx,
timeout) puts it back in the queue with exponential backoff until ``PORTAL_OPERATION_MAX_ATTEMPTS``; anything
else is a crash and ends it "errored" with the traceback kept in the log.
"""

from __future__ import annotations

import logging
import traceback
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.audit import AuditContext
from core.jobs import JobFailed, enqueue, enqueue_on_commit
from instances.choices import InstanceStatus, OperationStatus, RequestStatus
from instances.engine.log import OperationLog
from instances.kube.client import PermanentClusterError, TransientClusterError
from instances.kube.kustomize import KustomizeError
from instances.models import ChangeRequest, Instance, Operation

logger = logging.getLogger("instances.engine")
ENGINE = AuditContext.system("deployment engine")
QUEUE = "operations"


def new_job_id(operation_pk: int) -> str:
    return f"operation-{operation_pk}-{uuid.uuid4().hex[:8]}"


def enqueue_operation(operation: Operation, *, delay: float | None = None, on_commit: bool = True) -> None:
    """Hand the operation to a worker (after the surrounding transaction commits)."""
    args = (run_operation, operation.pk)
    kwargs = {"queue": QUEUE, "job_id": operation.rq_job_id, "delay": delay}
    if on_commit:
        enqueue_on_commit(*args, **kwargs)
    else:
        enqueue(*args, **kwargs)


def backoff(attempt: int) -> float:
    return min(settings.PORTAL_RETRY_BASE_DELAY * 2 ** (attempt - 1), 300)


def run_operation(operation_pk: int) -> str:
    """The RQ job: runs one operation if it is still queued (a duplicate or late delivery does nothing)."""
    now = timezone.now()
    claimed = Operation.objects.filter(pk=operation_pk, status=OperationStatus.QUEUED).update(
        status=OperationStatus.RUNNING,
        started_at=now,
        heartbeat_at=now,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return f"operation {operation_pk} is no longer queued; nothing to do"
    try:
        operation = Operation.objects.select_related(
            "instance__application", "instance__organisation", "instance__cluster", "target_version", "request"
        ).get(pk=operation_pk)
    except Exception as error:
        # E.g. a kubeconfig that no longer decrypts: end it now, with the reason, rather than leave it running.
        logger.exception("operation %s could not be loaded", operation_pk)
        end_operation(operation_pk, OperationStatus.ERRORED, f"internal error: {error.__class__.__name__}: {error}")
        return f"operation {operation_pk}: errored"
    log = OperationLog(operation)
    log(f"{operation.get_kind_display()} started (attempt {operation.attempts})")
    from instances.engine.steps import HANDLERS

    try:
        cluster = operation.instance.cluster
        if cluster is None:
            raise JobFailed(f"{operation.instance} has no cluster")
        client = cluster.client()
        try:
            result = HANDLERS[operation.kind](operation, log, client)
        finally:
            client.close()
    except TransientClusterError as error:
        if operation.attempts < settings.PORTAL_OPERATION_MAX_ATTEMPTS:
            delay = backoff(operation.attempts)
            log(f"transient cluster error, retrying in {delay:g}s: {error}", level="warning")
            retry(operation, delay)
            return f"operation {operation_pk} will be retried"
        finish(operation, log, OperationStatus.FAILED,
               f"gave up after {operation.attempts} attempts; last error: {error}")  # fmt: skip
    except (JobFailed, PermanentClusterError, KustomizeError, ValueError) as error:
        finish(operation, log, OperationStatus.FAILED, str(error))
    except Exception as error:
        logger.exception("operation %s crashed", operation_pk)
        log(traceback.format_exc(limit=20), level="error")
        finish(operation, log, OperationStatus.ERRORED, f"internal error: {error.__class__.__name__}: {error}")
    else:
        finish(operation, log, OperationStatus.SUCCEEDED, result)
    return f"operation {operation_pk}: {operation.status}"


def retry(operation: Operation, delay: float) -> None:
    """Back to the queue under a new job id; the operation stays the instance's active one meanwhile."""
    job_id = new_job_id(operation.pk)
    Operation.objects.filter(pk=operation.pk, status=OperationStatus.RUNNING).update(
        status=OperationStatus.QUEUED, rq_job_id=job_id, queued_at=timezone.now()
    )
    operation.rq_job_id = job_id
    enqueue_operation(operation, delay=delay, on_commit=False)


def finish(operation: Operation, log: OperationLog, status: str, message: str) -> None:
    """End the operation and its request; tell the requester."""
    log(message, level="info" if status == OperationStatus.SUCCEEDED else "error")
    end_operation(operation.pk, status, message)
    operation.status = status


# Where an instance goes when the operation that put it in a transitional status did not succeed: sync then
# derives RUNNING/DEGRADED from the cluster, and new requests are accepted again.
SETTLED_AFTER_FAILURE = {
    InstanceStatus.PROVISIONING: InstanceStatus.FAILED,
    InstanceStatus.UPGRADING: InstanceStatus.DEGRADED,
    InstanceStatus.DELETING: InstanceStatus.DEGRADED,
}


def end_operation(
    operation_pk: int,
    status: str,
    message: str,
    *,
    from_statuses: tuple[str, ...] = (OperationStatus.RUNNING,),
    log_line: dict | None = None,
) -> bool:
    """The one way an operation ends: its row, its request, and an instance never left half-way.

    Conditional on the operation still being in ``from_statuses``, so a late or duplicate caller changes nothing.
    """
    with transaction.atomic():
        operation = Operation.objects.select_for_update().filter(pk=operation_pk, status__in=from_statuses).first()
        if operation is None:
            return False
        operation.status = status
        operation.finished_at = timezone.now()
        operation.error = "" if status == OperationStatus.SUCCEEDED else message
        fields = ["status", "finished_at", "error"]
        if log_line:
            operation.log = [*operation.log, log_line]
            fields.append("log")
        operation.save(update_fields=fields)
        if status != OperationStatus.SUCCEEDED:
            for transitional, settled in SETTLED_AFTER_FAILURE.items():
                Instance.objects.filter(pk=operation.instance_id, status=transitional).update(status=settled)
        if operation.request_id:
            finish_request(operation.request_id, status == OperationStatus.SUCCEEDED, message)
    return True


def finish_request(request_pk: int, succeeded: bool, message: str) -> None:
    request = ChangeRequest.objects.get(pk=request_pk)
    if request.status != RequestStatus.RUNNING:
        return
    if succeeded:
        request.mark_succeeded(ENGINE, message)
    else:
        request.mark_failed(ENGINE, message)
    from instances.notifications import notify_finished

    transaction.on_commit(lambda: notify_finished(request_pk))
