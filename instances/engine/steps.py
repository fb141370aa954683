"""What each kind of operation does on the cluster: deploy, upgrade (with backup and rollback), back up, delete.

Every function receives the operation (already marked running), its log and a cluster client. Expected
failures raise ``JobFailed`` with a message for the user; cluster errors propagate as Transient/Permanent
errors and the runner decides whether to retry.
"""

from __future__ import annotations

import secrets
import time

from django.conf import settings
from django.utils import timezone

from core.jobs import JobFailed
from instances.choices import BackupStatus, BackupTrigger, InstanceStatus, OperationKind, RolloutState
from instances.engine import rendering
from instances.engine.log import OperationLog
from instances.engine.waiting import WORKLOAD_KINDS, wait_for_job, wait_for_namespace_gone, wait_for_workloads
from instances.kube.client import ClusterClient
from instances.kube.overlay import IDENTITY_LABEL_KEYS, MANAGED_BY, RenderedManifests
from instances.kube.rollout import job_status, workload_status
from instances.models import Backup, Instance, Operation, RolloutSnapshot

DATABASE_SECRET = "smile-database"
BACKUP_SECRET = "smile-timemachine-s3"


def identity_labels(instance: Instance) -> dict[str, str]:
    """The labels the overlay puts on every object of the instance (the secrets and backup Jobs get them too)."""
    values = (MANAGED_BY, instance.application.slug, instance.slug, instance.organisation.slug)
    return dict(zip(IDENTITY_LABEL_KEYS, values, strict=True))


def managed_selector(instance: Instance) -> str:
    managed_by, _application, instance_key, _organisation = IDENTITY_LABEL_KEYS
    return f"{managed_by}={MANAGED_BY},{instance_key}={instance.slug}"


# --- secrets -------------------------------------------------------------------------------------------------


def ensure_secrets(client: ClusterClient, instance: Instance, log: OperationLog) -> None:
    """Create the instance's secrets once. They are never rendered, never shown, and never rotated by an apply."""
    labels = identity_labels(instance)
    database = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": DATABASE_SECRET, "namespace": instance.namespace, "labels": labels},
        "type": "Opaque",
        "stringData": {"password": secrets.token_urlsafe(32)},
    }
    if client.create_if_absent(database):
        log(f"generated the database password (Secret {DATABASE_SECRET})")
    backup = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": BACKUP_SECRET, "namespace": instance.namespace, "labels": labels},
        "type": "Opaque",
        "stringData": {
            "endpoint": settings.PORTAL_BACKUP_S3_ENDPOINT,
            "bucket": settings.PORTAL_BACKUP_S3_BUCKET,
            "region": settings.PORTAL_BACKUP_S3_REGION,
            "access-key-id": settings.PORTAL_BACKUP_S3_ACCESS_KEY_ID,
            "secret-access-key": settings.PORTAL_BACKUP_S3_SECRET_ACCESS_KEY,
        },
    }
    if client.create_if_absent(backup):
        log(f"created the backup storage credentials (Secret {BACKUP_SECRET})")


# --- apply and rollout -----------------------------------------------------------------------------------------


def record_snapshots(instance: Instance, objects: list[dict]) -> None:
    """Store the rollout state of each workload (one row per component, updated in place)."""
    now = timezone.now()
    for obj in objects:
        state = workload_status(obj)
        containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        RolloutSnapshot.objects.update_or_create(
            instance=instance,
            kind=obj["kind"],
            component=obj["metadata"]["name"],
            defaults={
                "desired": state.desired,
                "updated": state.updated,
                "ready": state.ready,
                "available": state.available,
                "state": RolloutState.FAILED
                if state.failed
                else RolloutState.DONE
                if state.done
                else RolloutState.PROGRESSING,
                "message": state.message,
                "conditions": (obj.get("status") or {}).get("conditions") or [],
                "images": [c.get("image", "") for c in containers],
                "observed_at": now,
            },
        )


def apply_manifests(client: ClusterClient, instance: Instance, rendered: RenderedManifests, log: OperationLog):
    """Namespace first, then the secrets, then everything; prune what is no longer rendered."""
    namespaces = [o for o in rendered.objects if o["kind"] == "Namespace"]
    result = client.apply(namespaces)
    ensure_secrets(client, instance, log)
    result.objects += client.apply([o for o in rendered.objects if o["kind"] != "Namespace"]).objects
    log(f"applied {len(rendered.objects)} objects: {result.summary()}")
    pruned = client.prune(instance.namespace, managed_selector(instance), result.refs)
    if pruned:
        log("pruned objects no longer rendered: " + ", ".join(f"{kind}/{name}" for _v, kind, name in pruned))
    instance.applied_images = workload_images(rendered.objects)
    Instance.objects.filter(pk=instance.pk).update(applied_images=instance.applied_images)
    return result


def workload_images(objects: list[dict]) -> dict[str, list[str]]:
    """kind/name -> container images of every Deployment and StatefulSet (what drift is measured against)."""
    return {
        f"{o['kind']}/{o['metadata']['name']}": sorted(
            c.get("image", "") for c in o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        )
        for o in objects
        if o["kind"] in WORKLOAD_KINDS
    }


def follow_rollout(client: ClusterClient, instance: Instance, rendered: RenderedManifests, log: OperationLog):
    expected = {(o["kind"], o["metadata"]["name"]) for o in rendered.objects if o["kind"] in WORKLOAD_KINDS}
    last_line = {"text": ""}

    def progress(objects: list[dict]) -> None:
        record_snapshots(instance, objects)
        summary = ", ".join(
            f"{o['metadata']['name']} {workload_status(o).available}/{workload_status(o).desired}"
            for o in sorted(objects, key=lambda o: o["metadata"]["name"])
        )
        if summary != last_line["text"]:
            last_line["text"] = summary
            log(f"rollout: {summary}")
        else:
            log.heartbeat()

    deadline = time.monotonic() + settings.PORTAL_ROLLOUT_DEADLINE
    return wait_for_workloads(
        client, instance.namespace, managed_selector(instance), expected, deadline=deadline, on_progress=progress
    )


def render_and_record(
    operation: Operation, instance: Instance, log: OperationLog
) -> tuple[RenderedManifests, Operation | None]:
    """Render the target version, store manifests, hash and diff on the operation; also return what was applied
    last (the diff's left side, the skip check and the rollback target)."""
    rendered = rendering.render_instance(instance, operation.target_version)
    previous = rendering.last_applied(instance)
    operation.manifests = rendered.yaml
    operation.manifests_sha256 = rendered.sha256
    operation.diff = rendering.diff(previous.manifests if previous else "", rendered.yaml)
    operation.save(update_fields=["manifests", "manifests_sha256", "diff"])
    log(f"rendered {len(rendered.objects)} objects with Kustomize (sha256 {rendered.sha256[:12]})")
    return rendered, previous


def deploy(operation: Operation, log: OperationLog, client: ClusterClient) -> str:
    """Create (or re-apply) an instance at the operation's target version."""
    instance = operation.instance
    rendered, previous = render_and_record(operation, instance, log)
    if previous and previous.manifests_sha256 == rendered.sha256 and not instance.drift:
        log("the manifests are the same as the last applied ones and no drift was seen: nothing to apply")
    else:
        apply_manifests(client, instance, rendered, log)
    outcome = follow_rollout(client, instance, rendered, log)
    if not outcome.done:
        Instance.objects.filter(pk=instance.pk).update(status=InstanceStatus.FAILED)
        raise JobFailed(f"the rollout did not complete: {outcome.message}")
    Instance.objects.filter(pk=instance.pk).update(
        status=InstanceStatus.RUNNING, current_version=operation.target_version, drift=False, drift_detail=""
    )
    return f"{instance.slug} runs {operation.target_version}"


def upgrade(operation: Operation, log: OperationLog, client: ClusterClient) -> str:
    """Back up, apply the new version, follow the rollout; roll back to the previous manifests if it fails."""
    instance = operation.instance
    rendered, previous = render_and_record(operation, instance, log)
    backup = run_backup(client, instance, operation, BackupTrigger.PRE_UPGRADE, log)
    if backup.status != BackupStatus.SUCCEEDED:
        raise JobFailed(f"the pre-upgrade backup failed ({backup.message}); the upgrade was aborted, nothing changed")
    Instance.objects.filter(pk=instance.pk).update(status=InstanceStatus.UPGRADING)
    apply_manifests(client, instance, rendered, log)
    outcome = follow_rollout(client, instance, rendered, log)
    if outcome.done:
        Instance.objects.filter(pk=instance.pk).update(
            status=InstanceStatus.RUNNING, current_version=operation.target_version, drift=False, drift_detail=""
        )
        return f"{instance.slug} upgraded to {operation.target_version}"
    log(f"the upgrade failed: {outcome.message}", level="warning")
    old_version = instance.current_version
    if not (settings.PORTAL_ROLLBACK_ON_FAILURE and previous):
        Instance.objects.filter(pk=instance.pk).update(status=InstanceStatus.FAILED)
        raise JobFailed(f"the rollout of {operation.target_version} failed: {outcome.message}")
    log(f"rolling back to {old_version} (operation #{previous.pk})", level="warning")
    restored = RenderedManifests(objects=_objects(previous.manifests), yaml=previous.manifests,
                                 sha256=previous.manifests_sha256)  # fmt: skip
    apply_manifests(client, instance, restored, log)
    back = follow_rollout(client, instance, restored, log)
    status = InstanceStatus.RUNNING if back.done else InstanceStatus.DEGRADED
    Instance.objects.filter(pk=instance.pk).update(status=status)
    if not back.done:
        raise JobFailed(
            f"the rollout of {operation.target_version} failed ({outcome.message}) and the rollback to {old_version} "
            f"did not complete either ({back.message})"
        )
    raise JobFailed(
        f"rolled back to {old_version}: the rollout of {operation.target_version} failed ({outcome.message})"
    )


def _objects(text: str) -> list[dict]:
    import yaml

    from instances.kube.overlay import SafeLoader

    return [obj for obj in yaml.load_all(text, Loader=SafeLoader) if obj]


# --- backups -------------------------------------------------------------------------------------------------


def run_backup(client: ClusterClient, instance: Instance, operation: Operation, trigger: str, log: OperationLog):
    """Start a Job from the instance's timemachine CronJob and follow it to the end."""
    cronjob = instance.application.backup_cronjob
    if not cronjob:
        raise JobFailed(f"{instance.application} has no backup CronJob configured")
    job_name = f"{cronjob}-{trigger}-{operation.pk}"[:63].rstrip("-")
    labels = {**identity_labels(instance), "saas-portal.io/backup-trigger": trigger}
    job = client.create_job_from_cronjob(instance.namespace, cronjob, job_name, labels)
    backup, _created = Backup.objects.update_or_create(
        instance=instance, job_name=job_name, defaults={"trigger": trigger, "status": BackupStatus.RUNNING}
    )
    log(f"backup Job {job_name} started ({trigger})")

    def progress(obj: dict) -> None:
        state = job_status(obj)
        Backup.objects.filter(pk=backup.pk).update(started_at=state.start_time)
        log.heartbeat()

    deadline = time.monotonic() + settings.PORTAL_BACKUP_DEADLINE
    outcome = wait_for_job(client, instance.namespace, job["metadata"]["name"], deadline=deadline, on_progress=progress)
    final = client.get("Job", instance.namespace, job_name)
    state = job_status(final) if final else None
    backup.status = BackupStatus.SUCCEEDED if outcome.done else BackupStatus.FAILED
    backup.started_at = state.start_time if state else backup.started_at
    backup.finished_at = (state.completion_time if state else None) or timezone.now()
    backup.message = outcome.message
    backup.save(update_fields=["status", "started_at", "finished_at", "message"])
    log(f"backup Job {job_name}: {backup.get_status_display()} {outcome.message}".rstrip())
    return backup


def backup(operation: Operation, log: OperationLog, client: ClusterClient) -> str:
    instance = operation.instance
    result = run_backup(client, instance, operation, BackupTrigger.MANUAL, log)
    if result.status != BackupStatus.SUCCEEDED:
        raise JobFailed(f"the backup failed: {result.message}")
    return f"backup {result.job_name} of {instance.slug} succeeded"


# --- deletion ------------------------------------------------------------------------------------------------


def delete(operation: Operation, log: OperationLog, client: ClusterClient) -> str:
    """A final backup, then the namespace is deleted and awaited; the instance row stays, marked deleted."""
    instance = operation.instance
    Instance.objects.filter(pk=instance.pk).update(status=InstanceStatus.DELETING)
    if not client.namespace_gone(instance.namespace):
        final = run_backup(client, instance, operation, BackupTrigger.FINAL, log)
        if final.status != BackupStatus.SUCCEEDED:
            Instance.objects.filter(pk=instance.pk).update(status=InstanceStatus.RUNNING)
            raise JobFailed(f"the final backup failed ({final.message}); nothing was deleted")
        client.delete_namespace(instance.namespace)
        log(f"namespace {instance.namespace} is being deleted")
    deadline = time.monotonic() + settings.PORTAL_NAMESPACE_DELETE_DEADLINE
    outcome = wait_for_namespace_gone(client, instance.namespace, deadline=deadline)
    if not outcome.done:
        raise JobFailed(outcome.message)
    RolloutSnapshot.objects.filter(instance=instance).delete()
    Instance.objects.filter(pk=instance.pk).update(status=InstanceStatus.DELETED)
    log(outcome.message)
    return f"{instance.slug} deleted"


HANDLERS = {
    OperationKind.DEPLOY: deploy,
    OperationKind.UPGRADE: upgrade,
    OperationKind.BACKUP: backup,
    OperationKind.DELETE: delete,
}
