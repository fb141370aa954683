"""The sandbox: an emulated cluster for `make run` when no real cluster is configured.

The emulator runs in its own process (``python -m kubesim``); the portal registers it as the cluster
"sandbox", a cluster like any other whose kubeconfig points at the emulator, and, since the emulator keeps
everything in memory, re-deploys the instances that live on it whenever it starts.
"""

from __future__ import annotations

from django.db import transaction

from core.messages import Message, msg
from instances.choices import ClusterConnection, InstanceStatus, OperationStatus
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
    from instances.engine.dispatcher import queue_full_deploy
    from instances.engine.runner import end_operation

    with transaction.atomic():
        active = Operation.objects.filter(instance__cluster=cluster, status__in=OperationStatus.active())
        for pk in active.values_list("pk", flat=True):
            message = Message(msg("the sandbox restarted"))
            end_operation(pk, OperationStatus.FAILED, message, from_statuses=OperationStatus.active())
        live = Instance.objects.filter(cluster=cluster, current_version__isnull=False).exclude(
            status__in=(InstanceStatus.DELETED, InstanceStatus.DELETING)
        )
        # The emulator starts empty: whatever was applied before is gone, so apply everything again.
        operations = [queue_full_deploy(instance) for instance in live]
    return operations
