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

from instances.choices import OperationStatus, RequestStatus
from instances.engine.log import OperationLog
from instances.kube.client import PermanentClusterError, TransientClusterError
from instances.kube.kustomize import KustomizeError
from instances.models import ChangeRequest, Operation
from portal.audit import AuditContext
from portal.jobs import JobFailed, enqueue, enqueue_on_commit

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
    operation = Operation.objects.select_related(
        "instance__application", "instance__organisation", "instance__cluster", "target_version", "request"
    ).get(pk=operation_pk)
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
    with transaction.atomic():
        updated = Operation.objects.filter(pk=operation.pk, status=OperationStatus.RUNNING).update(
            status=status,
            finished_at=timezone.now(),
            error="" if status == OperationStatus.SUCCEEDED else message,
        )
        operation.status = status
        if updated and operation.request_id:
            finish_request(operation.request_id, status == OperationStatus.SUCCEEDED, message)


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
