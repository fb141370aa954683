"""Periodic syncs from the clusters, each with one list call per kind per cluster whatever the fleet's size:

- status: workload health (running or degraded) and drift (running images that differ from the applied ones);
- backups: the history of every instance's timemachine Jobs, scheduled ones included.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.audit import AuditContext
from core.jobs import enqueue, job_exists, periodic
from instances.choices import BackupStatus, BackupTrigger, InstanceStatus, OperationStatus
from instances.engine.apply import record_snapshots, workload_images
from instances.engine.backups import verify_backup_job
from instances.kube.errors import ClusterError
from instances.kube.kinds import BACKUP_TRIGGER_LABEL, INSTANCE_LABEL, MANAGED_SELECTOR
from instances.kube.overlay import ImageRef
from instances.kube.rollout import JobPhase, job_status, workload_status
from instances.models import Backup, Cluster, Instance, Operation

logger = logging.getLogger("instances.engine")
STATUS_SYNC = AuditContext.system("status sync")


def _each_cluster(sync) -> str:
    """Run ``sync`` on every cluster that has instances; a broken cluster does not stop the others."""
    results = []
    for cluster in Cluster.objects.all():
        try:
            results.append(sync(cluster))
        except ClusterError as error:
            logger.warning("%s of %s failed: %s", sync.__name__, cluster, error)
            results.append(f"{cluster}: {error}")
    return "; ".join(results)


def _live_instances(cluster: Cluster) -> dict[str, Instance]:
    return {
        i.slug: i
        for i in Instance.objects.filter(cluster=cluster)
        .exclude(status=InstanceStatus.DELETED)
        .select_related("application", "current_version")
    }


@periodic("sync_status")
def sync_status() -> str:
    """Workload health and drift of every instance of every cluster."""
    return _each_cluster(sync_cluster)


@periodic("sync_backups")
def sync_backups() -> str:
    """Backup history of every instance of every cluster."""
    return _each_cluster(sync_cluster_backups)


def sync_cluster(cluster: Cluster) -> str:
    instances = _live_instances(cluster)
    if not instances:
        return f"{cluster}: no instance"
    with cluster.client() as client:
        workloads = client.list_managed("Deployment", MANAGED_SELECTOR) + client.list_managed(
            "StatefulSet", MANAGED_SELECTOR
        )
        namespaces = {n["metadata"]["name"] for n in client.list_managed("Namespace", MANAGED_SELECTOR)}
    by_instance = defaultdict(list)
    for obj in workloads:
        by_instance[(obj["metadata"].get("labels") or {}).get(INSTANCE_LABEL)].append(obj)
    now = timezone.now()
    for slug, instance in instances.items():
        objects = by_instance.get(slug, [])
        with transaction.atomic():
            record_snapshots(instance, objects)
            drift = _drift(instance, objects, instance.namespace in namespaces)
            Instance.objects.filter(pk=instance.pk).update(
                synced_at=now, drift=bool(drift), drift_detail="\n".join(drift)
            )
            if instance.namespace in namespaces:
                healthy = objects and all(workload_status(o).done for o in objects)
                # Only from the statuses sync owns: an operation's upgrading/deleting is left alone.
                instance.transition(
                    STATUS_SYNC,
                    InstanceStatus.RUNNING if healthy else InstanceStatus.DEGRADED,
                    only_from=InstanceStatus.observed(),
                )
    return f"{cluster}: {len(instances)} instances, {len(workloads)} workloads"


def sync_cluster_backups(cluster: Cluster) -> str:
    instances = _live_instances(cluster)
    if not instances:
        return f"{cluster}: no instance"
    with cluster.client() as client:
        jobs = client.list_managed("Job", MANAGED_SELECTOR)
    _sync_backups(instances, jobs)
    return f"{cluster}: {len(jobs)} jobs"


def _drift(instance: Instance, objects: list[dict], namespace_exists: bool) -> list[str]:
    """What differs between what the record says and what the workloads run: the images last applied, and the
    images of the version the instance is recorded to run."""
    applied = instance.applied_images or {}
    if not applied:
        return []
    if not namespace_exists:
        return [f"namespace {instance.namespace} is missing"]
    found = workload_images(objects)
    lines = []
    for key, images in sorted(applied.items()):
        if key not in found:
            lines.append(f"{key} is missing")
        elif sorted(images) != found[key]:
            lines.append(f"{key} runs {', '.join(found[key])} instead of {', '.join(sorted(images))}")
    expected = version_images(instance)
    for key, images in sorted(found.items()):
        foreign = [image for image in images if image not in expected]
        if expected and foreign:
            lines.append(f"{key} runs {', '.join(foreign)}, not an image of version {instance.current_version}")
    return lines


def version_images(instance: Instance) -> set[str]:
    """The image references of the version the instance is recorded to run."""
    if instance.current_version is None:
        return set()
    refs = instance.images or instance.application.image_refs(instance.current_version.version)
    return {ImageRef(ref["repository"], ref.get("tag"), ref.get("digest")).reference for ref in refs.values()}


def _sync_backups(instances: dict[str, Instance], jobs: list[dict]) -> None:
    """Backup history from the timemachine Jobs (scheduled ones included) of every instance; a Job newly
    succeeded has its dump verified in the storage by a job of its own (``verify_backup_job``)."""
    to_verify = []
    for job in jobs:
        labels = job["metadata"].get("labels") or {}
        instance = instances.get(labels.get(INSTANCE_LABEL))
        if instance is None or not _is_backup(job, instance):
            continue
        state = job_status(job)
        status = {
            JobPhase.SUCCEEDED: BackupStatus.SUCCEEDED,
            JobPhase.FAILED: BackupStatus.FAILED,
        }.get(state.phase, BackupStatus.RUNNING)
        backup, _created = Backup.objects.get_or_create(
            instance=instance,
            job_name=job["metadata"]["name"],
            defaults={"trigger": labels.get(BACKUP_TRIGGER_LABEL, BackupTrigger.SCHEDULE)},
        )
        # A failed Job may have no completion time: the first sync that sees it failed records when.
        finished = state.completion_time or backup.finished_at
        if finished is None and status == BackupStatus.FAILED:
            finished = timezone.now()
        # Only a row the Job's state still decides: a verified, failed (verification included) or expired backup
        # is never moved back by its Job, which stays "succeeded" on the cluster.
        Backup.objects.filter(pk=backup.pk, status__in=(BackupStatus.RUNNING, BackupStatus.SUCCEEDED)).update(
            status=status, started_at=state.start_time or backup.started_at, finished_at=finished, message=state.message
        )
        if status == BackupStatus.SUCCEEDED and backup.status in (BackupStatus.RUNNING, BackupStatus.SUCCEEDED):
            to_verify.append(backup)
    # An operation verifies the backups it takes (a resumed one too): only the others are verified here.
    busy = set(
        Operation.objects.filter(
            instance__in=[b.instance_id for b in to_verify], status__in=OperationStatus.active()
        ).values_list("instance_id", flat=True)
    )
    for backup in to_verify:
        if backup.trigger != BackupTrigger.SCHEDULE and backup.instance_id in busy:
            continue
        pk = backup.pk
        # Reading a dump back may take long (a large dump is hashed whole): a job of its own, on the storage
        # queue with its own timeout, once per backup; the sync goes on with the other clusters.
        job_id = f"verify-backup-{pk}"
        if not job_exists(job_id, queue="storage"):
            enqueue(verify_backup_job, pk, queue="storage", job_id=job_id, job_timeout=settings.PORTAL_BACKUP_DEADLINE)


def _is_backup(job: dict, instance: Instance) -> bool:
    cronjob = instance.application.backup_cronjob
    owners = job["metadata"].get("ownerReferences") or []
    return bool(cronjob) and any(o.get("kind") == "CronJob" and o.get("name") == cronjob for o in owners)
