"""The sandbox: an emulated cluster for `make run` when no real cluster is configured.

The emulator runs in its own process (``python -m kubesim``); the portal registers it as the cluster
"sandbox", a cluster like any other whose kubeconfig points at the emulator, and, since the emulator keeps
everything in memory, re-deploys the instances that live on it whenever it starts.
"""

from __future__ import annotations

from django.db import transaction

from core.messages import Message, msg
from instances.choices import ClusterConnection, InstanceStatus, OperationKind, OperationStatus
from instances.models import Cluster, Instance, Operation

SANDBOX_NAME = "sandbox"


def ensure_sandbox_cluster(kubeconfig: str) -> Cluster:
    """The sandbox cluster row, reached with ``kubeconfig``; it becomes the default when no other cluster is."""
    cluster, _created = Cluster.objects.update_or_create(
        name=SANDBOX_NAME,
        defaults={"connection": ClusterConnection.KUBECONFIG, "kubeconfig": kubeconfig, "domain": "apps.sandbox.test"},
    )
    if not Cluster.objects.filter(is_default=True).exclude(pk=cluster.pk).exists():
        Cluster.objects.filter(pk=cluster.pk).update(is_default=True)
    Instance.objects.filter(cluster__isnull=True).exclude(status=InstanceStatus.DELETED).update(cluster=cluster)
    return cluster


def restore_sandbox(cluster: Cluster) -> list[Operation]:
    """Queue a deploy of every live instance on the (freshly started, empty) emulated cluster."""
    from instances.engine.runner import end_operation, enqueue_operation, new_job_id

    operations = []
    with transaction.atomic():
        active = Operation.objects.filter(instance__cluster=cluster, status__in=OperationStatus.active())
        for pk in active.values_list("pk", flat=True):
            message = Message(msg("the sandbox restarted"))
            end_operation(pk, OperationStatus.FAILED, message, from_statuses=OperationStatus.active())
        live = Instance.objects.filter(cluster=cluster, current_version__isnull=False).exclude(
            status__in=(InstanceStatus.DELETED, InstanceStatus.DELETING)
        )
        for instance in live:
            # The emulator starts empty: whatever was applied before is gone, so apply everything again.
            operation = Operation.objects.create(
                kind=OperationKind.DEPLOY,
                instance=instance,
                target_version=instance.current_version,
                full_resync=True,
            )
            operation.rq_job_id = new_job_id(operation.pk)
            operation.save(update_fields=["rq_job_id"])
            enqueue_operation(operation)
            operations.append(operation)
    return operations
