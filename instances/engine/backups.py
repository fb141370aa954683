"""Backups taken by operations: a Job started from the instance's timemachine CronJob, followed to its end.

The Job uploads with the instance's own storage credentials (``credentials``), brought to its Secret first; an
instance without credentials of its own is warned about, and its failed backup says why. A Job's success only
says it uploaded: the backup is *verified* once the portal has read its dump back from the storage (``storage``),
and failed, with the reason, when the dump is missing, empty or not the one the Job recorded.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.utils import timezone

from core.messages import Message, label, msg
from instances.choices import BackupStatus, BackupTrigger
from instances.engine.apply import instance_labels, sync_backup_secret
from instances.engine.errors import BackupFailed
from instances.engine.log import OperationLog
from instances.engine.storage import dump_key, verify
from instances.engine.waiting import wait_for_job
from instances.kube.client import ClusterClient
from instances.kube.kinds import BACKUP_TRIGGER_LABEL
from instances.kube.names import job_name
from instances.kube.rollout import job_status
from instances.models import Backup, Instance, Operation


def run_backup(client: ClusterClient, instance: Instance, operation: Operation, trigger: str, log: OperationLog):
    """Start a Job from the instance's timemachine CronJob and follow it to the end; returns the Backup row."""
    cronjob = instance.application.backup_cronjob
    if not cronjob:
        raise BackupFailed(msg("%(application)s has no backup CronJob configured"), application=instance.application)
    name = job_name(cronjob, trigger, operation.pk)
    done = Backup.objects.filter(
        instance=instance, job_name=name, status__in=(BackupStatus.SUCCEEDED, BackupStatus.VERIFIED)
    ).first()
    if done is not None:  # a resumed operation: its backup was taken before the worker stopped
        log(msg("backup Job %(job)s of this operation already succeeded: not taken again"), job=name)
        return verify_backup(done, log) if done.status == BackupStatus.SUCCEEDED else done
    has_credentials = sync_backup_secret(client, instance, log)
    if not has_credentials:
        log(msg("%(instance)s has no backup storage credentials of its own: its backup Job cannot upload"),
            level="warning", instance=instance.slug)  # fmt: skip
    labels = {**instance_labels(instance), BACKUP_TRIGGER_LABEL: trigger}
    client.create_job_from_cronjob(instance.namespace, cronjob, name, labels)
    backup, _created = Backup.objects.update_or_create(
        instance=instance, job_name=name, defaults={"trigger": trigger, "status": BackupStatus.RUNNING}
    )
    log(msg("backup Job %(job)s started (%(trigger)s)"), job=name, trigger=label(BackupTrigger, trigger))
    last = {"job": None}

    def progress(job: dict) -> None:
        last["job"] = job
        log.heartbeat()

    deadline = time.monotonic() + settings.PORTAL_BACKUP_DEADLINE
    outcome = wait_for_job(
        client, instance.namespace, name, deadline=deadline, on_progress=progress, heartbeat=log.heartbeat
    )
    state = job_status(last["job"]) if last["job"] else None
    message = outcome.message
    if not outcome.done and not has_credentials:
        text = msg("%(reason)s; the instance has no backup storage credentials of its own")
        message = Message(text, {"reason": outcome.message})
    backup.status = BackupStatus.SUCCEEDED if outcome.done else BackupStatus.FAILED
    backup.started_at = (state.start_time if state else None) or backup.started_at
    backup.finished_at = (state.completion_time if state else None) or timezone.now()
    backup.message = message.english
    backup.save(update_fields=["status", "started_at", "finished_at", "message"])
    if not outcome.done:
        log(msg("backup Job %(job)s failed: %(reason)s"), level="warning", job=name, reason=message)
        return backup
    log(msg("backup Job %(job)s succeeded"), job=name)
    return verify_backup(backup, log)


def verify_backup(backup: Backup, log: OperationLog | None = None) -> Backup:
    """Read the dump of a succeeded backup Job back from the storage: the backup becomes verified (with its
    storage key, size and SHA-256) or failed, saying what the Job left behind instead."""
    key = dump_key(backup.instance, backup.job_name)
    result = verify(backup.instance, key)
    backup.storage_key = key
    backup.size = result.size
    backup.sha256 = result.sha256
    if result.ok:
        backup.status, backup.verified_at = BackupStatus.VERIFIED, timezone.now()
        if log is not None:
            log(msg("backup %(key)s verified in the storage: %(size)s bytes, SHA-256 %(sha256)s"),
                key=key, size=result.size, sha256=result.sha256)  # fmt: skip
    else:
        reason = Message(msg("the Job succeeded but %(reason)s"), {"reason": result.reason})
        backup.status, backup.message = BackupStatus.FAILED, reason.english
        if log is not None:
            log(msg("backup %(key)s failed its verification: %(reason)s"), level="warning", key=key, reason=reason)
    # Only from "succeeded": a concurrent verification or retention never sees its newer state overwritten, and
    # the caller gets what the row says then.
    updated = Backup.objects.filter(pk=backup.pk, status=BackupStatus.SUCCEEDED).update(
        status=backup.status, storage_key=key, size=backup.size, sha256=backup.sha256,
        verified_at=backup.verified_at, message=backup.message,
    )  # fmt: skip
    if not updated:
        backup.refresh_from_db()
    return backup


def verify_backup_job(backup_pk: int) -> str:
    """Verify a backup recorded by the sync (a scheduled one); nothing to do once it is no longer "succeeded"."""
    backup = Backup.objects.select_related("instance").filter(pk=backup_pk, status=BackupStatus.SUCCEEDED).first()
    if backup is None:
        return f"backup {backup_pk}: nothing to verify"
    backup = verify_backup(backup)
    return f"backup {backup_pk}: {backup.status}"
