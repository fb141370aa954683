"""The API resources the Kubernetes emulator serves, and the discovery documents built from them.

Discovery has to be exact enough for two demanding clients: the official Python `DynamicClient` (which reads
`/api`, `/apis` and one `APIResourceList` per group version) and `kubectl` (which also reads `/openapi/v3` to
decide whether the server validates fields itself; answering "yes" there spares us serving full schemas).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

# The "-kubesim" pre-release suffix lets a client see that this cluster is emulated (e.g. to mark it in a UI).
KUBERNETES_VERSION = "v1.32.0-kubesim"
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
SUBRESOURCE_VERBS = ["get", "patch", "update"]


@dataclass(frozen=True)
class ResourceType:
    """One served resource, e.g. apps/v1 deployments (kind Deployment, namespaced, with a status subresource)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    has_status: bool = False
    categories: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.plural)

    @property
    def qualified_plural(self) -> str:
        """`deployments.apps` — the resource name Kubernetes uses in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"
        parts = [prefix]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
        return "/".join(parts)


def _r(group, version, plural, kind, **kwargs) -> ResourceType:
    return ResourceType(group, version, plural, kind, **kwargs)


RESOURCES: tuple[ResourceType, ...] = (
    _r("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",), has_status=True),
    _r("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    _r("", "v1", "secrets", "Secret"),
    _r("", "v1", "services", "Service", short_names=("svc",), has_status=True, categories=("all",)),
    _r("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",), has_status=True),
    _r("", "v1", "resourcequotas", "ResourceQuota", short_names=("quota",), has_status=True),
    _r("", "v1", "limitranges", "LimitRange", short_names=("limits",)),
    _r("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    _r("", "v1", "pods", "Pod", short_names=("po",), has_status=True, categories=("all",)),
    _r("", "v1", "events", "Event", short_names=("ev",)),
    _r("apps", "v1", "deployments", "Deployment", short_names=("deploy",), has_status=True, categories=("all",)),
    _r("apps", "v1", "statefulsets", "StatefulSet", short_names=("sts",), has_status=True, categories=("all",)),
    _r("apps", "v1", "replicasets", "ReplicaSet", short_names=("rs",), has_status=True, categories=("all",)),
    _r("batch", "v1", "jobs", "Job", has_status=True, categories=("all",)),
    _r("batch", "v1", "cronjobs", "CronJob", short_names=("cj",), has_status=True, categories=("all",)),
    _r("networking.k8s.io", "v1", "ingresses", "Ingress", short_names=("ing",), has_status=True),
    _r("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short_names=("netpol",)),
    _r("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short_names=("pdb",), has_status=True),
    _r("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _r("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
)

BY_KEY: dict[tuple[str, str, str], ResourceType] = {r.key: r for r in RESOURCES}
BY_KIND: dict[tuple[str, str], ResourceType] = {(r.group_version, r.kind): r for r in RESOURCES}
NAMESPACES = BY_KEY[("", "v1", "namespaces")]


def group_versions() -> dict[str, list[ResourceType]]:
    """Resources by group version, core ("v1") first, in declaration order."""
    grouped: dict[str, list[ResourceType]] = {}
    for resource in RESOURCES:
        grouped.setdefault(resource.group_version, []).append(resource)
    return grouped


def version_info() -> dict:
    return {
        "major": "1",
        "minor": KUBERNETES_VERSION.split(".")[1],
        "gitVersion": KUBERNETES_VERSION,
        "gitCommit": "emulated",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _api_group(group: str) -> dict:
    version = {"groupVersion": f"{group}/v1", "version": "v1"}
    return {"name": group, "versions": [version], "preferredVersion": version}


def api_group(group: str) -> dict | None:
    if not any(r.group == group for r in RESOURCES if r.group):
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_api_group(group)}


def api_group_list() -> dict:
    groups = [gv.split("/")[0] for gv in group_versions() if "/" in gv]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_api_group(g) for g in groups]}


def api_resource_list(group_version: str) -> dict | None:
    resources = group_versions().get(group_version)
    if resources is None:
        return None
    entries = []
    for r in resources:
        entry = {
            "name": r.plural,
            "singularName": r.kind.lower(),
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
            "storageVersionHash": hashlib.sha256(f"{r.group_version}/{r.kind}".encode()).hexdigest()[:12],
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        entries.append(entry)
        if r.has_status:
            status = {"name": f"{r.plural}/status", "singularName": "", "namespaced": r.namespaced, "kind": r.kind}
            entries.append({**status, "verbs": SUBRESOURCE_VERBS})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}


def _openapi_path(group_version: str) -> str:
    return "api/v1" if group_version == "v1" else f"apis/{group_version}"


def openapi_v3_document(group_version: str) -> dict | None:
    """A minimal OpenAPI v3 document: only the PATCH operations and their `fieldValidation` parameter.

    kubectl (>= 1.27) checks this to decide that the server validates fields itself and then skips client-side
    schema validation. The emulator does not validate (see the module docstring of `kubesim.store`), so this is a
    deliberate white lie that lets `kubectl apply` work without `--validate=false`.
    """
    resources = group_versions().get(group_version)
    if resources is None:
        return None
    paths = {}
    for r in resources:
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        item = r.path("{namespace}" if r.namespaced else None, "{name}")
        paths[item] = {
            "patch": {
                "operationId": f"patch{r.kind}",
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
                "parameters": [
                    {"name": name, "in": "query", "schema": {"type": "string"}}
                    for name in ("dryRun", "fieldManager", "fieldValidation", "force")
                ],
                "responses": {"200": {"description": "OK"}},
            }
        }
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION}, "paths": paths}


def openapi_v3_root() -> dict:
    paths = {}
    for group_version in group_versions():
        body = json.dumps(openapi_v3_document(group_version), sort_keys=True).encode()
        digest = hashlib.sha256(body).hexdigest()[:32].upper()
        path = _openapi_path(group_version)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}


def openapi_v3_for_path(path: str) -> dict | None:
    """`api/v1` or `apis/apps/v1` → that group version's document."""
    if path == "api/v1":
        return openapi_v3_document("v1")
    if path.startswith("apis/"):
        return openapi_v3_document(path.removeprefix("apis/"))
    return None
