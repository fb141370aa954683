"""Kubernetes facts the portal relies on, stated once: its labels, the kinds it manages and their API paths,
the order in which they are applied, and which of them may be pruned.

Knowing the paths of the kinds it renders lets the cluster client talk to the API without a discovery round
trip per connection; a kind outside this table is refused rather than guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FIELD_MANAGER = "saas-portal"
MANAGED_BY = "saas-portal"
LABEL_PREFIX = "saas-portal.io/"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
APPLICATION_LABEL = f"{LABEL_PREFIX}application"
INSTANCE_LABEL = f"{LABEL_PREFIX}instance"
ORGANISATION_LABEL = f"{LABEL_PREFIX}organisation"
# On the Jobs the portal starts from the timemachine CronJob: why the backup was taken.
BACKUP_TRIGGER_LABEL = f"{LABEL_PREFIX}backup-trigger"
SETTINGS_HASH_ANNOTATION = f"{LABEL_PREFIX}settings-sha256"
# Every object of every instance carries these, so status sync finds all of them with one list call per kind.
IDENTITY_LABEL_KEYS = (MANAGED_BY_LABEL, APPLICATION_LABEL, INSTANCE_LABEL, ORGANISATION_LABEL)


def selector(labels: Mapping[str, str]) -> str:
    """The equality label selector that requires every one of ``labels``."""
    return ",".join(f"{key}={value}" for key, value in labels.items())


MANAGED_SELECTOR = selector({MANAGED_BY_LABEL: MANAGED_BY})


def identity_labels(*, application: str, instance: str, organisation: str) -> dict[str, str]:
    """The labels on every object, pod and volume of an instance."""
    return dict(zip(IDENTITY_LABEL_KEYS, (MANAGED_BY, application, instance, organisation), strict=True))


def instance_match_labels(instance: str) -> dict[str, str]:
    """The labels that single out everything the portal manages for one instance."""
    return {MANAGED_BY_LABEL: MANAGED_BY, INSTANCE_LABEL: instance}


def instance_selector(instance: str) -> str:
    return selector(instance_match_labels(instance))


@dataclass(frozen=True)
class Kind:
    """A kind the portal renders: where its API lives, and how the portal treats it."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True
    # Apply order: what others depend on first (the namespace, its constraints, what pods mount), the Ingress
    # that routes to Services last.
    apply_rank: int = 3
    # Whether an object of this kind that is no longer rendered is deleted. Never: the Namespace (it goes with
    # the instance), PersistentVolumeClaims and Secrets (data and generated credentials), Jobs (backups are
    # history, not rendered state).
    prunable: bool = True

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The API path of the collection (``name=None``) or of one object."""
        root = f"/apis/{self.api_version}" if self.group else f"/api/{self.api_version}"
        if self.namespaced and namespace:
            root += f"/namespaces/{namespace}"
        root += f"/{self.plural}"
        return f"{root}/{name}" if name else root


KINDS: Mapping[tuple[str, str], Kind] = {
    (k.api_version, k.kind): k
    for k in (
        Kind("v1", "Namespace", "namespaces", namespaced=False, apply_rank=0, prunable=False),
        Kind("v1", "ResourceQuota", "resourcequotas", apply_rank=1),
        Kind("v1", "LimitRange", "limitranges", apply_rank=1),
        Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", apply_rank=1),
        Kind("v1", "ServiceAccount", "serviceaccounts", apply_rank=1),
        Kind("rbac.authorization.k8s.io/v1", "Role", "roles", apply_rank=1),
        Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", apply_rank=1),
        Kind("v1", "Secret", "secrets", apply_rank=2, prunable=False),
        Kind("v1", "ConfigMap", "configmaps", apply_rank=2),
        Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims", apply_rank=2, prunable=False),
        Kind("v1", "Service", "services", apply_rank=2),
        Kind("apps/v1", "StatefulSet", "statefulsets"),
        Kind("apps/v1", "Deployment", "deployments"),
        Kind("batch/v1", "CronJob", "cronjobs"),
        Kind("batch/v1", "Job", "jobs", prunable=False),
        Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
        Kind("v1", "Pod", "pods", prunable=False),
        Kind("networking.k8s.io/v1", "Ingress", "ingresses", apply_rank=4),
    )
}
BY_NAME: Mapping[str, Kind] = {k.kind: k for k in KINDS.values()}
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
PRUNABLE_KINDS = tuple(k for k in KINDS.values() if k.prunable)
# Objects are sorted by kind in this order, then by name, wherever a stable order matters (apply, render).
KIND_ORDER = tuple(k.kind for k in sorted(KINDS.values(), key=lambda k: k.apply_rank))


def kind_of(api_version: str | None, kind: str | None) -> Kind | None:
    return KINDS.get((api_version or "", kind or ""))


def sort_key(obj: Mapping[str, Any]) -> tuple:
    """Apply order by kind, then a total order (apiVersion, namespace, name), so any output is deterministic."""
    kind = obj.get("kind", "")
    rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    metadata = obj.get("metadata") or {}
    return (rank, kind, obj.get("apiVersion", ""), metadata.get("namespace", ""), metadata.get("name", ""))


def object_key(obj: Mapping[str, Any]) -> str:
    """``apiVersion/Kind/namespace/name``: how the portal records an object it applied."""
    metadata = obj.get("metadata") or {}
    return f"{obj.get('apiVersion')}/{obj.get('kind')}/{metadata.get('namespace') or ''}/{metadata.get('name')}"
