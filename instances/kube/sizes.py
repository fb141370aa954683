"""What each size of instance gets: replicas, container requests and limits, storage, and the namespace quota.

Keys are the values of the instance's size (small, medium, large).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class ContainerResources:
    """Requests and limits of one container."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str

    def as_dict(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


@dataclass(frozen=True)
class SizeResources:
    """Everything a size changes. The quota leaves room for one surge pod per Deployment (maxSurge 1) and
    two backup pods (the scheduled Job and a manual one) and a restore or drill pod, so a rolling update never stalls
    on the quota."""

    core_replicas: int
    nginx_replicas: int
    core: ContainerResources
    nginx: ContainerResources
    memcached: ContainerResources
    memcached_cache_mib: int
    database: ContainerResources
    # Only used when the StatefulSet is created: volumeClaimTemplates are immutable afterwards.
    database_storage: str
    timemachine: ContainerResources
    container_max_cpu: str
    container_max_memory: str
    quota: Mapping[str, str]


_NO_EXPOSED_SERVICES = {"services.loadbalancers": "0", "services.nodeports": "0"}

SIZE_PROFILES: Mapping[str, SizeResources] = MappingProxyType(
    {
        "small": SizeResources(
            core_replicas=1,
            nginx_replicas=1,
            core=ContainerResources("250m", "512Mi", "1", "1Gi"),
            nginx=ContainerResources("50m", "64Mi", "250m", "128Mi"),
            memcached=ContainerResources("50m", "96Mi", "200m", "96Mi"),
            memcached_cache_mib=64,
            database=ContainerResources("250m", "512Mi", "1", "1Gi"),
            database_storage="10Gi",
            timemachine=ContainerResources("100m", "256Mi", "500m", "512Mi"),
            container_max_cpu="1",
            container_max_memory="1Gi",
            quota=MappingProxyType(
                {
                    "requests.cpu": "2",
                    "requests.memory": "3Gi",
                    "limits.cpu": "6",
                    "limits.memory": "6Gi",
                    "pods": "15",
                    "persistentvolumeclaims": "2",
                    "requests.storage": "20Gi",
                    **_NO_EXPOSED_SERVICES,
                }
            ),
        ),
        "medium": SizeResources(
            core_replicas=2,
            nginx_replicas=2,
            core=ContainerResources("500m", "1Gi", "2", "2Gi"),
            nginx=ContainerResources("100m", "128Mi", "500m", "256Mi"),
            memcached=ContainerResources("100m", "192Mi", "500m", "192Mi"),
            memcached_cache_mib=128,
            database=ContainerResources("500m", "1Gi", "2", "2Gi"),
            database_storage="20Gi",
            timemachine=ContainerResources("200m", "512Mi", "1", "1Gi"),
            container_max_cpu="2",
            container_max_memory="2Gi",
            quota=MappingProxyType(
                {
                    "requests.cpu": "4",
                    "requests.memory": "7Gi",
                    "limits.cpu": "14",
                    "limits.memory": "13Gi",
                    "pods": "20",
                    "persistentvolumeclaims": "2",
                    "requests.storage": "40Gi",
                    **_NO_EXPOSED_SERVICES,
                }
            ),
        ),
        "large": SizeResources(
            core_replicas=4,
            nginx_replicas=3,
            core=ContainerResources("1", "2Gi", "2", "4Gi"),
            nginx=ContainerResources("200m", "128Mi", "1", "256Mi"),
            memcached=ContainerResources("200m", "384Mi", "1", "384Mi"),
            memcached_cache_mib=256,
            database=ContainerResources("1", "4Gi", "4", "8Gi"),
            database_storage="50Gi",
            timemachine=ContainerResources("500m", "1Gi", "2", "2Gi"),
            container_max_cpu="4",
            container_max_memory="8Gi",
            quota=MappingProxyType(
                {
                    "requests.cpu": "10",
                    "requests.memory": "20Gi",
                    "limits.cpu": "26",
                    "limits.memory": "36Gi",
                    "pods": "30",
                    "persistentvolumeclaims": "2",
                    "requests.storage": "100Gi",
                    **_NO_EXPOSED_SERVICES,
                }
            ),
        ),
    }
)
