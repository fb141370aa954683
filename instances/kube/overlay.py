"""Per-instance Kustomize overlays, generated as data, and their rendering with the real Kustomize.

An instance is the shared base (`instances/bases/smile/`) plus a small overlay that says what is particular
to it: namespace, portal labels, images pinned by digest, host and TLS, size profile, settings, backup schedule
and the network flows that depend on the cluster (its ingress controller, the backup storage). What is particular
is an ``OverlaySpec`` (``spec.py``). Everything written here is built as Python dicts and serialised by PyYAML's
safe dumper and `json.dumps`; no user-supplied string is ever pasted into YAML text, so a setting such as
"a\\nkind: Secret" stays a string.

The rendered output (`RenderedManifests`) is sorted deterministically, so the same spec always gives the same
YAML and the same sha256 — the hash recorded on each operation to tell whether anything changed.
"""

from __future__ import annotations

import json
from typing import Any

from instances.kube.kinds import SETTINGS_HASH_ANNOTATION
from instances.kube.sizes import ContainerResources
from instances.kube.spec import DEFAULT_BASE, DEFAULT_NAMESPACE_PREFIX, ImageRef, OverlaySpec

__all__ = ["DEFAULT_BASE", "DEFAULT_NAMESPACE_PREFIX", "ImageRef", "OverlaySpec", "build_kustomization"]
__all__ += ["build_namespace", "build_patches"]

POD_SECURITY_LEVEL = "restricted"
TLS_ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer"

# Names of the objects of the base that the overlay patches.
CORE_DEPLOYMENT = "smile-core"
NGINX_DEPLOYMENT = "smile-nginx"
MEMCACHED_DEPLOYMENT = "smile-memcached"
DATABASE_STATEFULSET = "smile-database"
TIMEMACHINE_CRONJOB = "smile-timemachine"
# Suspended; the portal starts its Jobs (restores and drills). Same image, flows and resources as the timemachine.
RESTORE_CRONJOB = "smile-restore"
SETTINGS_CONFIGMAP = "smile-settings"
INGRESS = "smile"
NGINX_NETWORK_POLICY = "smile-nginx"
TIMEMACHINE_NETWORK_POLICY = "smile-timemachine"
QUOTA = "smile-quota"
LIMIT_RANGE = "smile-limits"
# Which image placeholder each container of the base runs (its pull policy follows the image's pinning).
CONTAINER_IMAGES = {
    "core": "smile-core",
    "nginx": "smile-nginx",
    "memcached": "memcached",
    "postgres": "postgres",
    "timemachine": "smile-timemachine",
    "restore": "smile-timemachine",
}


# --- Overlay generation -------------------------------------------------------------------------------------


def _to_json(data: Any) -> str:
    # Non-ASCII characters are written as themselves: Kustomize's YAML parser refuses the surrogate-pair
    # escapes json.dumps would produce for characters outside the Basic Multilingual Plane.
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def _json6902(kind: str, name: str, operations: list[dict[str, Any]], *, group: str = "", version: str = "v1"):
    """A Kustomize patch entry with JSON 6902 operations, serialised from data (JSON is valid YAML)."""
    target = {"kind": kind, "name": name, "version": version}
    if group:
        target["group"] = group
    return {"target": target, "patch": _to_json(operations)}


def _strategic_merge(api_version: str, kind: str, name: str, body: dict[str, Any]) -> dict[str, str]:
    """A Kustomize strategic-merge patch entry, serialised from data."""
    patch = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, **body}
    return {"patch": _to_json(patch)}


def _pod_patch(
    spec: OverlaySpec, container: str, resources: ContainerResources, **container_fields: Any
) -> dict[str, Any]:
    # Containers merge by name in a strategic-merge patch: only the named container changes.
    fields = {"name": container, "resources": resources.as_dict(), **container_fields}
    # An unmapped placeholder keeps the base's policy; the render then refuses it (render._check_images).
    if image := spec.images.get(CONTAINER_IMAGES[container]):
        fields["imagePullPolicy"] = image.pull_policy
    return {"spec": {"containers": [fields]}}


def build_patches(spec: OverlaySpec) -> list[dict[str, Any]]:
    """The overlay's patches. JSON 6902 where a list element must be addressed by position (Ingress rules,
    volumeClaimTemplates, LimitRange items, NetworkPolicy rules) or a map replaced whole (quota); strategic merge
    elsewhere."""
    return [*_workload_patches(spec), *_network_patches(spec), *_isolation_patches(spec)]


def _workload_patches(spec: OverlaySpec) -> list[dict[str, Any]]:
    profile = spec.profile
    core_template = _pod_patch(spec, "core", profile.core)
    # The ConfigMap keeps its name (see build_kustomization), so its content change alone would not restart
    # the pods reading it through envFrom; a hash of the settings on the pod template does.
    core_template["metadata"] = {"annotations": {SETTINGS_HASH_ANNOTATION: spec.settings_sha256}}
    return [
        _strategic_merge("v1", "ConfigMap", SETTINGS_CONFIGMAP, {"data": dict(spec.settings)}),
        _strategic_merge(
            "apps/v1",
            "Deployment",
            CORE_DEPLOYMENT,
            {"spec": {"replicas": profile.core_replicas, "template": core_template}},
        ),
        _strategic_merge(
            "apps/v1",
            "Deployment",
            NGINX_DEPLOYMENT,
            {"spec": {"replicas": profile.nginx_replicas, "template": _pod_patch(spec, "nginx", profile.nginx)}},
        ),
        _strategic_merge(
            "apps/v1",
            "Deployment",
            MEMCACHED_DEPLOYMENT,
            {
                "spec": {
                    "template": _pod_patch(
                        spec, "memcached", profile.memcached, args=["-m", str(profile.memcached_cache_mib)]
                    )
                }
            },
        ),
        _strategic_merge(
            "apps/v1",
            "StatefulSet",
            DATABASE_STATEFULSET,
            {"spec": {"template": _pod_patch(spec, "postgres", profile.database)}},
        ),
        # volumeClaimTemplates has no merge key: a strategic-merge patch would replace the whole list.
        _json6902(
            "StatefulSet",
            DATABASE_STATEFULSET,
            [
                {
                    "op": "replace",
                    "path": "/spec/volumeClaimTemplates/0/spec/resources/requests/storage",
                    "value": profile.database_storage,
                }
            ],
            group="apps",
        ),
        _strategic_merge(
            "batch/v1",
            "CronJob",
            TIMEMACHINE_CRONJOB,
            {
                "spec": {
                    "schedule": spec.timemachine_schedule,
                    "timeZone": spec.timemachine_time_zone,
                    "jobTemplate": {"spec": {"template": _pod_patch(spec, "timemachine", profile.timemachine)}},
                }
            },
        ),
        _strategic_merge(
            "batch/v1",
            "CronJob",
            RESTORE_CRONJOB,
            {"spec": {"jobTemplate": {"spec": {"template": _pod_patch(spec, "restore", profile.timemachine)}}}},
        ),
    ]


def _network_patches(spec: OverlaySpec) -> list[dict[str, Any]]:
    """Host, TLS and class of the Ingress; the flows that depend on the cluster: who may reach nginx (the ingress
    controller's namespace) and where the backup Jobs may upload (the storage's port, and addresses if known)."""
    ingress = [
        {"op": "replace", "path": "/spec/ingressClassName", "value": spec.ingress_class},
        {"op": "replace", "path": "/spec/rules/0/host", "value": spec.host},
        {"op": "replace", "path": "/spec/tls/0/hosts", "value": [spec.host]},
        {"op": "replace", "path": "/spec/tls/0/secretName", "value": spec.tls_secret_name},
    ]
    if spec.tls_cluster_issuer:
        # cert-manager's ingress-shim sees the annotation and issues the certificate into the TLS secret.
        annotations = {TLS_ISSUER_ANNOTATION: spec.tls_cluster_issuer}
        ingress.append({"op": "add", "path": "/metadata/annotations", "value": annotations})
    storage: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": spec.backup_storage_port}]}
    if spec.backup_storage_cidrs:
        storage["to"] = [{"ipBlock": {"cidr": cidr}} for cidr in spec.backup_storage_cidrs]
    return [
        _json6902("Ingress", INGRESS, ingress, group="networking.k8s.io"),
        _json6902(
            "NetworkPolicy",
            NGINX_NETWORK_POLICY,
            [
                {
                    "op": "replace",
                    "path": "/spec/ingress/0/from/0/namespaceSelector/matchLabels",
                    "value": {"kubernetes.io/metadata.name": spec.ingress_controller_namespace},
                }
            ],
            group="networking.k8s.io",
        ),
        # The second egress rule of the base's policy is the storage placeholder (see networkpolicies.yaml).
        _json6902(
            "NetworkPolicy",
            TIMEMACHINE_NETWORK_POLICY,
            [{"op": "replace", "path": "/spec/egress/1", "value": storage}],
            group="networking.k8s.io",
        ),
    ]


def _isolation_patches(spec: OverlaySpec) -> list[dict[str, Any]]:
    profile = spec.profile
    return [
        _json6902("ResourceQuota", QUOTA, [{"op": "replace", "path": "/spec/hard", "value": dict(profile.quota)}]),
        _json6902(
            "LimitRange",
            LIMIT_RANGE,
            [
                {
                    "op": "replace",
                    "path": "/spec/limits/0/max",
                    "value": {"cpu": profile.container_max_cpu, "memory": profile.container_max_memory},
                },
                {"op": "replace", "path": "/spec/limits/1/max", "value": {"storage": profile.database_storage}},
            ],
        ),
    ]


def build_namespace(spec: OverlaySpec) -> dict[str, Any]:
    """The instance's Namespace; Pod Security admission enforces the `restricted` standard in it, as defined
    in the pinned version (see ``spec.DEFAULT_POD_SECURITY_VERSION``)."""
    labels = {}
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = POD_SECURITY_LEVEL
        labels[f"pod-security.kubernetes.io/{mode}-version"] = spec.pod_security_version
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": spec.namespace, "labels": labels}}


NAMESPACE_FILE = "namespace.yaml"


def build_kustomization(spec: OverlaySpec, base_reference: str) -> dict[str, Any]:
    """The overlay's kustomization.yaml as data; `base_reference` is the base's path relative to it.

    Settings go through a patch of the base's `smile-settings` ConfigMap rather than a configMapGenerator:
    the name stays fixed, so a re-apply updates that ConfigMap in place and nothing is left to prune (a
    generator's hash suffix would create a new ConfigMap at each change and orphan the old one). Pods still
    restart on a change thanks to the settings hash annotation (see build_patches).
    """
    labels = [
        # Identity labels go on pod templates too (pods are found by instance) but never on selectors,
        # which are immutable. They never change for an instance, so they are safe on volumeClaimTemplates.
        {"pairs": spec.identity_labels, "includeSelectors": False, "includeTemplates": True},
    ]
    if spec.extra_labels:
        # Extra labels may change over an instance's life: kept off templates, since Kustomize would also
        # put them on the StatefulSet's immutable volumeClaimTemplates.
        labels.append({"pairs": dict(spec.extra_labels), "includeSelectors": False, "includeTemplates": False})
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": spec.namespace,
        "resources": [base_reference, NAMESPACE_FILE],
        "labels": labels,
        "images": [ref.kustomize_entry(placeholder) for placeholder, ref in spec.images.items()],
        "patches": build_patches(spec),
    }
