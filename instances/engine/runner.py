"""Running an operation: claim it, do it, end it — the one job function the worker executes.

start → run → finish, as NetBox's JobRunner. An expected failure (``OperationFailed``: a rollout that timed out,
a failed backup, a cluster that refuses the change, a render that fails) ends the operation "failed" with its
message. A transient cluster error (409, 429, 5xx, timeout) puts it back in the queue with exponential backoff
until ``PORTAL_OPERATION_MAX_ATTEMPTS``. Anything else is a bug: the operation ends "errored" with "internal
error, reference <id>"; the traceback goes to the server log under that reference and to the operation's
``traceback`` field, which only maintainers see.
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
from core.jobs import enqueue, enqueue_on_commit
from core.messages import Message, label, msg
from instances.choices import InstanceStatus, OperationKind, OperationStatus, RequestStatus
from instances.engine.errors import (
    ClusterRefused,
    ClusterUnreachable,
    KubeconfigUnreadable,
    OperationFailed,
    RenderFailed,
)
from instances.engine.log import OperationLog, log_line
from instances.kube.errors import PermanentClusterError, TransientClusterError
from instances.kube.kustomize import KustomizeError
from instances.kube.names import InvalidSpec
from instances.models import ApplicationVersion, ChangeRequest, Instance, Operation

logger = logging.getLogger("instances.engine")
ENGINE = AuditContext.engine()
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
    operation = Operation(pk=operation_pk)
    claimed = operation.transition(
        AuditContext.engine(operation_pk),
        OperationStatus.RUNNING,
        fields={"started_at": now, "heartbeat_at": now, "attempts": F("attempts") + 1},
        only_from=(OperationStatus.QUEUED,),
    )
    if not claimed:
        return f"operation {operation_pk} is no longer queued; nothing to do"
    try:
        operation = (
            Operation.objects.select_related(
                "instance__application", "instance__organisation", "instance__cluster", "target_version", "request"
            )
            .defer("instance__cluster__kubeconfig")  # read (and decrypted) when the client needs it
            .get(pk=operation_pk)
        )
        log = OperationLog(operation)
        log(msg("%(kind)s started (attempt %(attempt)s)"), kind=label(OperationKind, operation.kind),
            attempt=operation.attempts)  # fmt: skip
        result = execute(operation, log)
    except TransientClusterError as error:
        if operation.attempts < settings.PORTAL_OPERATION_MAX_ATTEMPTS:
            delay = backoff(operation.attempts)
            log(msg("transient cluster error, retrying in %(delay)s s: %(error)s"), level="warning", delay=f"{delay:g}",
                error=error.message)  # fmt: skip
            retry(operation, delay)
            return f"operation {operation_pk} will be retried"
        finish(operation, OperationStatus.FAILED, ClusterUnreachable(operation.attempts, error.message).reason)
    except OperationFailed as failure:
        finish(operation, OperationStatus.FAILED, failure.reason)
    except Exception as error:
        reference = uuid.uuid4().hex[:12]
        logger.exception("operation %s crashed (reference %s)", operation_pk, reference)
        message = Message(msg("internal error, reference %(reference)s"), {"reference": reference})
        details = f"reference {reference}\n" + "".join(traceback.format_exception(error, limit=30))
        finish(operation, OperationStatus.ERRORED, message, traceback_text=details)
    else:
        finish(operation, OperationStatus.SUCCEEDED, result)
    return f"operation {operation_pk}: {operation.status}"


def execute(operation: Operation, log: OperationLog) -> Message:
    """Run the operation's handler against its cluster; cluster and render errors become expected failures."""
    from instances.engine.steps import HANDLERS

    cluster = operation.instance.cluster
    if cluster is None:
        raise OperationFailed(msg("%(instance)s has no cluster"), instance=operation.instance.slug)
    try:
        client = cluster.client()
    except PermanentClusterError as error:  # a kubeconfig that cannot be decrypted, parsed or used
        raise KubeconfigUnreadable(error.message) from None
    try:
        with client:
            return HANDLERS[operation.kind](operation, log, client)
    except PermanentClusterError as error:
        raise ClusterRefused(error.message) from None
    except (KustomizeError, InvalidSpec) as error:
        raise RenderFailed(str(error)) from None


def retry(operation: Operation, delay: float) -> None:
    """Back to the queue under a new job id; the operation stays the instance's active one meanwhile."""
    job_id = new_job_id(operation.pk)
    moved = operation.transition(
        AuditContext.engine(operation.pk),
        OperationStatus.QUEUED,
        fields={"rq_job_id": job_id, "queued_at": timezone.now()},
        only_from=(OperationStatus.RUNNING,),
    )
    if moved:
        enqueue_operation(operation, delay=delay, on_commit=False)


def finish(operation: Operation, status: str, message: Message, *, traceback_text: str = "") -> None:
    """End the operation and its request; tell the requester. The in-memory status follows only if this call
    ended it (a late run, its operation ended by someone else, reports what the database says)."""
    if end_operation(operation.pk, status, message, traceback_text=traceback_text):
        operation.status = status
    else:
        operation.refresh_from_db(fields=["status"])


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
    message: Message,
    *,
    from_statuses: tuple[str, ...] = (OperationStatus.RUNNING,),
    traceback_text: str = "",
) -> bool:
    """The one way an operation ends: its row, its log's last line, its request, and an instance never left
    half-way. Conditional on the operation still being in ``from_statuses``: a late or duplicate caller changes
    nothing."""
    ctx = AuditContext.engine(operation_pk)
    failed = status != OperationStatus.SUCCEEDED
    with transaction.atomic():
        operation = Operation.objects.select_for_update().filter(pk=operation_pk, status__in=from_statuses).first()
        if operation is None:
            return False
        line = log_line(message, "error" if failed else "info")
        ended = operation.transition(
            ctx,
            status,
            fields={
                "finished_at": timezone.now(),
                "error": message.english if failed else "",
                "error_message": message.as_json() if failed else None,
                "traceback": traceback_text,
                "log": [*operation.log, line],
            },
            only_from=from_statuses,
            reason=message.english if failed else "",
        )
        if not ended:
            return False
        if failed:
            settle_instance(ctx, operation)
        if operation.request_id:
            finish_request(operation.request_id, not failed, message, ctx=ctx)
    return True


def settle_instance(ctx: AuditContext, operation: Operation) -> None:
    """After a failure, the instance leaves its transitional status, and its record says what the cluster was
    given last: never a version the cluster is not running."""
    instance = Instance.objects.only("pk", "slug", "status", "current_version").get(pk=operation.instance_id)
    status = SETTLED_AFTER_FAILURE.get(instance.status, instance.status)
    fields = {}
    applied = (operation.progress or {}).get("applied_version")
    if applied and applied != instance.current_version_id:
        version = ApplicationVersion.objects.get(pk=applied)
        detail = f"operation #{operation.pk} applied {version} and ended before its rollout was confirmed"
        fields = {"current_version": version, "drift": True, "drift_detail": detail}
    instance.transition(ctx, status, fields=fields)


def finish_request(request_pk: int, succeeded: bool, message: Message, *, ctx: AuditContext = ENGINE) -> None:
    """End a running request as its operation ended (``ctx``: the engine, on behalf of that operation)."""
    request = ChangeRequest.objects.get(pk=request_pk)
    if request.status != RequestStatus.RUNNING:
        return
    if succeeded:
        request.mark_succeeded(ctx, message)
    else:
        request.mark_failed(ctx, message)
    from instances.notifications import mail_on_commit, notify_finished

    mail_on_commit(notify_finished, request_pk)
