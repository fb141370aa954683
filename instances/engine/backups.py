"""Backups taken by operations: a Job started from the instance's timemachine CronJob, followed to its end.

The Job uploads with the instance's own storage credentials (``credentials``), brought to its Secret first; an
instance without credentials of its own is warned about, and its failed backup says why.
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
    done = Backup.objects.filter(instance=instance, job_name=name, status=BackupStatus.SUCCEEDED).first()
    if done is not None:  # a resumed operation: its backup was taken before the worker stopped
        log(msg("backup Job %(job)s of this operation already succeeded: not taken again"), job=name)
        return done
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
    if outcome.done:
        log(msg("backup Job %(job)s succeeded"), job=name)
    else:
        log(msg("backup Job %(job)s failed: %(reason)s"), level="warning", job=name, reason=message)
    return backup
