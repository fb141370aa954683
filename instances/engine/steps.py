"""What each kind of operation does on the cluster: deploy, upgrade (with backup and rollback), back up, delete.

Every function receives the operation (already running), its log and a cluster client. Expected failures raise
an ``OperationFailed`` with a message for the requester; cluster errors propagate as Transient/Permanent errors
and the runner decides whether to retry. Instance statuses change through ``Instance.transition`` only, each
change audited with the engine as actor and the operation's id.
"""

from __future__ import annotations

import time

from django.conf import settings

from core.audit import AuditContext
from core.messages import Message, msg
from instances.choices import BackupStatus, BackupTrigger, InstanceStatus, OperationKind
from instances.engine import rendering
from instances.engine.apply import apply_manifests, record_snapshots
from instances.engine.backups import run_backup
from instances.engine.errors import BackupFailed, NamespaceStuck, RolloutFailed
from instances.engine.log import OperationLog
from instances.engine.restore import drill, restore
from instances.engine.waiting import WaitOutcome, wait_for_namespace_gone, wait_for_workloads
from instances.kube.client import ClusterClient
from instances.kube.kinds import WORKLOAD_KINDS, instance_selector
from instances.kube.render import RenderedManifests
from instances.kube.rollout import workload_status
from instances.models import Instance, Operation, RolloutSnapshot


def follow_rollout(
    client: ClusterClient, instance: Instance, rendered: RenderedManifests, log: OperationLog
) -> WaitOutcome:
    """Follow the rollout of every workload the manifests hold, until all are available, one fails, or the
    deadline passes. The unchanged ones answer at once: the list shows them done."""
    expected = {(o["kind"], o["metadata"]["name"]) for o in rendered.objects if o["kind"] in WORKLOAD_KINDS}
    last_line = {"text": ""}
    seen_versions: dict[tuple[str, str], str] = {}

    def progress(objects: list[dict]) -> None:
        # Only the workloads that changed since the last event are written again.
        changed = [o for o in objects if seen_versions.get(_ref(o)) != o["metadata"].get("resourceVersion")]
        seen_versions.update((_ref(o), o["metadata"].get("resourceVersion")) for o in changed)
        record_snapshots(instance, changed)
        states = {o["metadata"]["name"]: workload_status(o) for o in objects}
        summary = ", ".join(f"{name} {state.available}/{state.desired}" for name, state in sorted(states.items()))
        if summary and summary != last_line["text"]:
            last_line["text"] = summary
            log(msg("rollout: %(progress)s"), progress=summary)
        else:
            log.heartbeat()

    deadline = time.monotonic() + settings.PORTAL_ROLLOUT_DEADLINE
    return wait_for_workloads(
        client, instance.namespace, instance_selector(instance.slug), expected, deadline=deadline,
        on_progress=progress, heartbeat=log.heartbeat,
    )  # fmt: skip


def _ref(obj: dict) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def record_progress(operation: Operation, **facts) -> None:
    """What an operation has done so far, kept on its row: a resumed run skips what is done and knows what the
    cluster was last given."""
    operation.progress = {**(operation.progress or {}), **facts}
    Operation.objects.filter(pk=operation.pk).update(progress=operation.progress)


def apply_version(
    client: ClusterClient, operation: Operation, rendered: RenderedManifests, version, log: OperationLog, **kwargs
) -> list[dict]:
    """Apply ``rendered`` (the manifests of ``version``) and remember that the cluster was given this version."""
    changed = apply_manifests(client, operation.instance, rendered, log, **kwargs)
    record_progress(operation, applied_version=version.pk if version else None)
    return changed


def render_and_record(
    operation: Operation, instance: Instance, log: OperationLog
) -> tuple[RenderedManifests, Operation | None]:
    """Render the target version, store manifests, hash and diff on the operation; also return what was applied
    last (the diff's left side and the rollback target)."""
    operation.images = rendering.image_refs(instance, operation.target_version, operation.images)
    rendered = rendering.render_instance(instance, operation.target_version, operation.images)
    previous = rendering.last_applied(instance)
    operation.manifests = rendered.yaml
    operation.manifests_sha256 = rendered.sha256
    operation.diff = rendering.diff(previous.manifests if previous else "", rendered.yaml)
    operation.save(update_fields=["images", "manifests", "manifests_sha256", "diff"])
    log(msg("rendered %(count)s objects with Kustomize (sha256 %(sha)s)"), count=len(rendered.objects),
        sha=rendered.sha256[:12])  # fmt: skip
    return rendered, previous


def _given(operation: Operation) -> dict:
    """The fields of an instance that was given the operation's version (whether or not it came up)."""
    return {"current_version": operation.target_version, "images": operation.images}


def _running(operation: Operation, instance: Instance, ctx: AuditContext) -> None:
    instance.transition(
        ctx,
        InstanceStatus.RUNNING,
        fields={
            "current_version": operation.target_version,
            "images": operation.images,
            "drift": False,
            "drift_detail": "",
        },
    )


def deploy(operation: Operation, log: OperationLog, client: ClusterClient) -> Message:
    """Create (or re-apply) an instance at the operation's target version."""
    instance, ctx = operation.instance, AuditContext.engine(operation.pk)
    rendered, _previous = render_and_record(operation, instance, log)
    changed = apply_version(client, operation, rendered, operation.target_version, log, full=operation.full_resync)
    if not changed:
        log(msg("no object changed since the last apply: nothing to send"))
    outcome = follow_rollout(client, instance, rendered, log)
    if not outcome.done:
        instance.transition(ctx, InstanceStatus.FAILED, fields=_given(operation))
        raise RolloutFailed(msg("the rollout did not complete: %(reason)s"), reason=outcome.message)
    _running(operation, instance, ctx)
    return Message(
        msg("%(instance)s runs %(version)s"), {"instance": instance.slug, "version": operation.target_version}
    )


def upgrade(operation: Operation, log: OperationLog, client: ClusterClient) -> Message:
    """Back up, apply the new version, follow the rollout; roll back to the previous manifests if it fails.

    A resumed run (its worker died) skips the backup it already took, and goes on rolling back if it had begun.
    """
    instance, ctx = operation.instance, AuditContext.engine(operation.pk)
    rendered, previous = render_and_record(operation, instance, log)
    if not (operation.progress or {}).get("rolling_back"):
        backup = run_backup(client, instance, operation, BackupTrigger.PRE_UPGRADE, log)
        if backup.status != BackupStatus.VERIFIED:
            raise BackupFailed(
                msg("the pre-upgrade backup failed (%(reason)s); the upgrade was aborted, nothing changed"),
                reason=backup.message,
            )
        instance.transition(ctx, InstanceStatus.UPGRADING)
        apply_version(client, operation, rendered, operation.target_version, log)
        outcome = follow_rollout(client, instance, rendered, log)
        if outcome.done:
            _running(operation, instance, ctx)
            text = msg("%(instance)s upgraded to %(version)s")
            return Message(text, {"instance": instance.slug, "version": operation.target_version})
        log(msg("the upgrade failed: %(reason)s"), level="warning", reason=outcome.message)
        if not (settings.PORTAL_ROLLBACK_ON_FAILURE and previous):
            # The cluster was given the new version and keeps it: the record says so, and that it fails.
            instance.transition(ctx, InstanceStatus.FAILED, fields=_given(operation))
            raise RolloutFailed(
                msg("the rollout of %(version)s failed: %(reason)s"),
                version=operation.target_version,
                reason=outcome.message,
            )
        record_progress(operation, rolling_back=True, failure=outcome.message.as_json())
    return roll_back(operation, previous, log, client)


def roll_back(operation: Operation, previous: Operation, log: OperationLog, client: ClusterClient) -> Message:
    """Apply the manifests of the last successful operation again and follow them; always raises RolloutFailed."""
    instance, ctx = operation.instance, AuditContext.engine(operation.pk)
    failure = Message.from_json(operation.progress["failure"])
    old_version = instance.current_version
    log(msg("rolling back to %(version)s (operation #%(operation)s)"), level="warning", version=old_version,
        operation=previous.pk)  # fmt: skip
    restored = rendering.manifests_of(previous)
    apply_version(client, operation, restored, old_version, log)
    back = follow_rollout(client, instance, restored, log)
    instance.transition(ctx, InstanceStatus.RUNNING if back.done else InstanceStatus.DEGRADED)
    if not back.done:
        raise RolloutFailed(
            msg(
                "the rollout of %(version)s failed (%(reason)s) and the rollback to %(old)s did not complete "
                "either (%(rollback)s)"
            ),
            version=operation.target_version,
            reason=failure,
            old=old_version,
            rollback=back.message,
        )
    raise RolloutFailed(
        msg("rolled back to %(old)s: the rollout of %(version)s failed (%(reason)s)"),
        old=old_version,
        version=operation.target_version,
        reason=failure,
    )


def backup(operation: Operation, log: OperationLog, client: ClusterClient) -> Message:
    instance = operation.instance
    result = run_backup(client, instance, operation, BackupTrigger.MANUAL, log)
    if result.status != BackupStatus.VERIFIED:
        raise BackupFailed(msg("the backup failed: %(reason)s"), reason=result.message)
    return Message(msg("backup %(job)s of %(instance)s succeeded"), {"job": result.job_name, "instance": instance.slug})


def delete(operation: Operation, log: OperationLog, client: ClusterClient) -> Message:
    """A final backup, then the namespace is deleted and awaited; the instance row stays, marked deleted."""
    instance, ctx = operation.instance, AuditContext.engine(operation.pk)
    instance.transition(ctx, InstanceStatus.DELETING)
    if not client.namespace_gone(instance.namespace):
        final = run_backup(client, instance, operation, BackupTrigger.FINAL, log)
        if final.status != BackupStatus.VERIFIED:
            instance.transition(ctx, InstanceStatus.RUNNING)
            raise BackupFailed(msg("the final backup failed (%(reason)s); nothing was deleted"), reason=final.message)
        client.delete_namespace(instance.namespace)
        log(msg("namespace %(namespace)s is being deleted"), namespace=instance.namespace)
    deadline = time.monotonic() + settings.PORTAL_NAMESPACE_DELETE_DEADLINE
    outcome = wait_for_namespace_gone(client, instance.namespace, deadline=deadline, heartbeat=log.heartbeat)
    if not outcome.done:
        raise NamespaceStuck(outcome.message.text, **outcome.message.params)
    RolloutSnapshot.objects.filter(instance=instance).delete()
    instance.transition(ctx, InstanceStatus.DELETED, fields={"applied_objects": {}, "applied_images": {}})
    log.message(outcome.message)
    return Message(msg("%(instance)s deleted"), {"instance": instance.slug})


HANDLERS = {
    OperationKind.DEPLOY: deploy,
    OperationKind.UPGRADE: upgrade,
    OperationKind.BACKUP: backup,
    OperationKind.DELETE: delete,
    OperationKind.RESTORE: restore,
    OperationKind.DRILL: drill,
}
