"""Restores and restore drills: a Job started from the instance's restore CronJob puts a verified dump back.

A restore (an approved request) takes a fresh pre-restore backup, scales the application's Deployments down to
0 so nothing writes while the database is replaced, runs the restore Job (``RESTORE_MODE=replace``), and scales
back up by applying the last applied manifests again. When the restore Job fails, the pre-restore dump is
restored the same way: the instance is left as it was, and the operation says so.

A drill restores the latest verified backup into a scratch database on the cluster (``RESTORE_MODE=drill``,
dropped after); the application is not touched. Its operation's status is the drill's result.

A resumed run (its worker died) skips the pre-restore backup it took, finds its restore Job again (Job names
are fixed per operation, and starting one is idempotent) and goes on rolling back if it had begun.
"""

from __future__ import annotations

import datetime
import time

from django.conf import settings
from django.utils import timezone

from core.audit import AuditContext
from core.messages import Message, label, msg
from instances.choices import BackupStatus, BackupTrigger, InstanceStatus
from instances.engine import rendering
from instances.engine.apply import instance_labels, sync_backup_secret
from instances.engine.backups import run_backup
from instances.engine.errors import BackupFailed, OperationFailed
from instances.engine.log import OperationLog
from instances.engine.waiting import WaitOutcome, wait_for_job, wait_for_workloads
from instances.kube.client import ClusterClient
from instances.kube.kinds import instance_selector
from instances.kube.names import job_name
from instances.kube.render import RenderedManifests
from instances.models import Backup, Instance, Operation

# The field manager of the scale-down: the portal's next server-side apply (forced) takes replicas back from it.
SCALE_FIELD_MANAGER = "saas-portal-restore"
# Statuses an instance may be restored from (it runs, or runs badly: a restore may be the cure).
RESTORABLE = (InstanceStatus.RUNNING, InstanceStatus.DEGRADED, InstanceStatus.FAILED, InstanceStatus.UPGRADING)


class RestoreFailed(OperationFailed):
    """A restore Job failed, or the application did not come back after it."""


def describe(backup: Backup) -> str:
    """How a backup is named in the log and the result: when it was taken (UTC) and its Job."""
    return f"{timezone.localtime(backup.taken_at, datetime.UTC):%Y-%m-%d %H:%M} UTC ({backup.job_name})"


def run_restore_job(
    client: ClusterClient, operation: Operation, backup: Backup, mode: str, step: str, log: OperationLog
) -> WaitOutcome:
    """Start a Job from the restore CronJob that restores ``backup`` (``mode``: replace or drill), and follow it.

    ``step`` tells the Jobs of one operation apart (restore, rollback, drill); the same step of a resumed run
    finds its Job again instead of starting a second one."""
    instance = operation.instance
    cronjob = instance.application.restore_cronjob
    if not cronjob:
        raise RestoreFailed(msg("%(application)s has no restore CronJob configured"), application=instance.application)
    if not backup.storage_key:
        raise RestoreFailed(msg("the backup %(backup)s has no storage key"), backup=describe(backup))
    sync_backup_secret(client, instance, log)
    name = job_name(cronjob, step, operation.pk)
    env = {"RESTORE_KEY": backup.storage_key, "RESTORE_MODE": mode}
    client.create_job_from_cronjob(instance.namespace, cronjob, name, instance_labels(instance), env=env)
    log(msg("restore Job %(job)s started: %(mode)s from the backup of %(backup)s"), job=name, mode=mode,
        backup=describe(backup))  # fmt: skip
    deadline = time.monotonic() + settings.PORTAL_RESTORE_DEADLINE
    outcome = wait_for_job(
        client, instance.namespace, name, deadline=deadline, on_progress=lambda _job: log.heartbeat(),
        heartbeat=log.heartbeat,
    )  # fmt: skip
    if outcome.done:
        log(msg("restore Job %(job)s succeeded"), job=name)
    else:
        log(msg("restore Job %(job)s failed: %(reason)s"), level="warning", job=name, reason=outcome.message)
    return outcome


def _applied(instance: Instance) -> RenderedManifests:
    """What the cluster was last given successfully: scaling up applies its Deployments again."""
    previous = rendering.last_applied(instance)
    if previous is None:
        raise RestoreFailed(msg("%(instance)s was never deployed: there is nothing to restore into"),
                            instance=instance.slug)  # fmt: skip
    return rendering.manifests_of(previous)


def _deployments(applied: RenderedManifests) -> list[dict]:
    return [obj for obj in applied.objects if obj["kind"] == "Deployment"]


def scale_down(client: ClusterClient, instance: Instance, applied: RenderedManifests, log: OperationLog) -> None:
    """Every Deployment of the instance to 0 replicas, and wait until their pods are gone (nothing writes)."""
    deployments = _deployments(applied)
    for obj in deployments:
        client.scale("Deployment", instance.namespace, obj["metadata"]["name"], 0, SCALE_FIELD_MANAGER)
    names = ", ".join(sorted(obj["metadata"]["name"] for obj in deployments))
    log(msg("scaling down %(deployments)s to 0 replicas"), deployments=names)
    expected = {("Deployment", obj["metadata"]["name"]) for obj in deployments}
    outcome = wait_for_workloads(
        client, instance.namespace, instance_selector(instance.slug), expected,
        deadline=time.monotonic() + settings.PORTAL_ROLLOUT_DEADLINE, on_progress=lambda _objects: log.heartbeat(),
        heartbeat=log.heartbeat,
    )  # fmt: skip
    if not outcome.done:
        # Some Deployments may be at 0 already: nothing was restored, so start them again before saying so.
        back = scale_up(client, instance, applied, log)
        raise RestoreFailed(
            msg("the application did not stop (%(reason)s); nothing was restored, and it was started again: "
                "%(state)s"),
            reason=outcome.message, state=back.message,
        )  # fmt: skip
    log(msg("the application is stopped"))


def scale_up(client: ClusterClient, instance: Instance, applied: RenderedManifests, log: OperationLog) -> WaitOutcome:
    """Apply the Deployments of the last applied manifests again (their replicas come back) and follow the
    rollout of every workload."""
    from instances.engine.steps import follow_rollout  # steps registers this module's handlers: imported late

    deployments = _deployments(applied)
    client.apply(deployments)
    log(msg("applied the last applied manifests of %(count)s Deployments again to scale them back up"),
        count=len(deployments))  # fmt: skip
    return follow_rollout(client, instance, applied, log)


def restore(operation: Operation, log: OperationLog, client: ClusterClient) -> Message:
    """Restore the request's verified backup into the instance's database (see the module docstring)."""
    instance, ctx, chosen = operation.instance, AuditContext.engine(operation.pk), operation.backup
    progress = operation.progress or {}
    if chosen is None or chosen.status != BackupStatus.VERIFIED:
        raise RestoreFailed(msg("the chosen backup is no longer verified (expired or failed); nothing changed"))
    if instance.status not in RESTORABLE:
        raise RestoreFailed(msg("%(instance)s is %(status)s: it cannot be restored now; nothing changed"),
                            instance=instance.slug, status=label(InstanceStatus, instance.status))  # fmt: skip
    from instances.engine.steps import record_progress  # see scale_up

    applied = _applied(instance)
    if "pre_restore_backup" not in progress:
        pre = run_backup(client, instance, operation, BackupTrigger.PRE_RESTORE, log)
        if pre.status != BackupStatus.VERIFIED:
            raise BackupFailed(
                msg("the pre-restore backup failed (%(reason)s); the restore was aborted, nothing changed"),
                reason=pre.message or pre.get_status_display(),
            )
        record_progress(operation, pre_restore_backup=pre.pk)
    pre = Backup.objects.get(pk=operation.progress["pre_restore_backup"])
    instance.transition(ctx, InstanceStatus.UPGRADING)
    if not progress.get("rolling_back"):
        scale_down(client, instance, applied, log)
        outcome = run_restore_job(client, operation, chosen, "replace", "restore", log)
        if outcome.done:
            back = scale_up(client, instance, applied, log)
            if not back.done:
                instance.transition(ctx, InstanceStatus.DEGRADED)
                raise RestoreFailed(
                    msg("the backup of %(backup)s was restored, but the application did not come back up: "
                        "%(reason)s"),
                    backup=describe(chosen), reason=back.message,
                )  # fmt: skip
            instance.transition(ctx, InstanceStatus.RUNNING)
            return Message(
                msg("%(instance)s restored from the backup of %(backup)s"),
                {"instance": instance.slug, "backup": describe(chosen)},
            )
        record_progress(operation, rolling_back=True, failure=outcome.message.as_json())
    return put_back(operation, chosen, pre, applied, log, client)


def put_back(
    operation: Operation, chosen: Backup, pre: Backup, applied: RenderedManifests, log: OperationLog, client
) -> Message:
    """The restore failed: restore the pre-restore dump the same way and scale up; always raises RestoreFailed."""
    instance, ctx = operation.instance, AuditContext.engine(operation.pk)
    failure = Message.from_json(operation.progress["failure"])
    log(msg("the restore failed; putting the pre-restore backup %(backup)s back"), level="warning",
        backup=describe(pre))  # fmt: skip
    scale_down(client, instance, applied, log)  # a resumed run may find the application up again
    outcome = run_restore_job(client, operation, pre, "replace", "rollback", log)
    back = scale_up(client, instance, applied, log)
    if outcome.done and back.done:
        instance.transition(ctx, InstanceStatus.RUNNING)
        raise RestoreFailed(
            msg("the restore of the backup of %(backup)s failed (%(reason)s); the instance was put back as it was "
                "(pre-restore backup %(pre)s)"),
            backup=describe(chosen), reason=failure, pre=describe(pre),
        )  # fmt: skip
    instance.transition(ctx, InstanceStatus.FAILED if not outcome.done else InstanceStatus.DEGRADED)
    raise RestoreFailed(
        msg("the restore of the backup of %(backup)s failed (%(reason)s) and putting the pre-restore backup %(pre)s "
            "back failed too (%(rollback)s): the instance needs a maintainer"),
        backup=describe(chosen), reason=failure, pre=describe(pre),
        rollback=outcome.message if not outcome.done else back.message,
    )  # fmt: skip


def drill(operation: Operation, log: OperationLog, client: ClusterClient) -> Message:
    """Restore the operation's backup into a scratch database; passes when the restore Job succeeds."""
    backup = operation.backup
    if backup is None or backup.status != BackupStatus.VERIFIED:
        raise RestoreFailed(msg("restore drill not run: the backup is no longer verified"))
    outcome = run_restore_job(client, operation, backup, "drill", "drill", log)
    if not outcome.done:
        raise RestoreFailed(msg("restore drill failed: the backup of %(backup)s could not be restored (%(reason)s)"),
                            backup=describe(backup), reason=outcome.message)  # fmt: skip
    return Message(msg("restore drill passed: the backup of %(backup)s restores"), {"backup": describe(backup)})
