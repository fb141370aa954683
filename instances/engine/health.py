"""Cluster health: can the portal reach a cluster, and which Kubernetes version does it run?

One check, used by the periodic job and by the maintainers' "check now" button alike.
"""

from __future__ import annotations

from django.utils import timezone

from core.jobs import periodic
from instances.kube.errors import ClusterError
from instances.models import Cluster


def check_cluster(cluster: Cluster) -> tuple[bool, str]:
    """Ask the cluster for its version and record the answer on the row; returns (reachable, message)."""
    try:
        with cluster.client() as client:
            ok, message = client.reachable()
    except ClusterError as error:
        ok, message = False, error.message
    cluster.reachable = ok
    if ok:
        cluster.server_version = message.removeprefix("Kubernetes ")
    cluster.last_error = "" if ok else message
    cluster.checked_at = timezone.now()
    Cluster.objects.filter(pk=cluster.pk).update(
        reachable=cluster.reachable,
        server_version=cluster.server_version,
        last_error=cluster.last_error,
        checked_at=cluster.checked_at,
    )
    return ok, message


@periodic("check_clusters")
def check_clusters() -> str:
    """The periodic job: check every cluster; one that does not answer does not stop the others."""
    return "; ".join(f"{cluster}: {check_cluster(cluster)[1]}" for cluster in Cluster.objects.all())
