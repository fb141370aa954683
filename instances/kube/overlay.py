"""Per-instance Kustomize overlays, generated as data, and their rendering with the real Kustomize.

An instance is the shared base (`instances/bases/smile/`) plus a small overlay that says what is particular
to it: namespace, portal labels, images pinned by digest, host and TLS, size profile, settings and backup
schedule. Everything written here is built as Python dicts and serialised by PyYAML's safe dumper and `json.dumps`;
no user-supplied string is ever pasted into YAML text, so a setting such as "a\\nkind: Secret" stays a string.

The rendered output (`RenderedManifests`) is sorted deterministically, so the same spec always gives the same
YAML and the same sha256 — the hash recorded on each operation to tell whether anything changed.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from instances.kube.kinds import IDENTITY_LABEL_KEYS, LABEL_PREFIX, SETTINGS_HASH_ANNOTATION, identity_labels
from instances.kube.names import (
    DNS_SUBDOMAIN_MAX,
    InvalidSpec,
    namespace_name,
    validate_dns_label,
    validate_dns_subdomain,
    validate_label,
)
from instances.kube.schedule import validate_cron, validate_time_zone
from instances.kube.sizes import SIZE_PROFILES, ContainerResources, SizeResources

DEFAULT_BASE = Path(__file__).resolve().parent.parent / "bases" / "smile"
DEFAULT_NAMESPACE_PREFIX = "saas-"
POD_SECURITY_LEVEL = "restricted"

# Names of the objects of the base that the overlay patches.
CORE_DEPLOYMENT = "smile-core"
NGINX_DEPLOYMENT = "smile-nginx"
MEMCACHED_DEPLOYMENT = "smile-memcached"
DATABASE_STATEFULSET = "smile-database"
TIMEMACHINE_CRONJOB = "smile-timemachine"
SETTINGS_CONFIGMAP = "smile-settings"
INGRESS = "smile"
INGRESS_NETWORK_POLICY = "allow-ingress-controller"
QUOTA = "smile-quota"
LIMIT_RANGE = "smile-limits"

_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_IMAGE_REPOSITORY = re.compile(
    r"^(?:[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(?:\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_IMAGE_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$")


# --- Specification ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRef:
    """Where a base image placeholder really comes from. With a digest, the image is pinned to it: the tag, when
    given too, is kept for the reader (``repo:1.2.6@sha256:…``) but the runtime pulls by digest."""

    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self):
        if not isinstance(self.repository, str) or not _IMAGE_REPOSITORY.match(self.repository):
            raise InvalidSpec(f"Image repository {self.repository!r} is not a valid image name (no tag or digest).")
        if self.tag is not None and not _IMAGE_TAG.match(self.tag):
            raise InvalidSpec(f"Image tag {self.tag!r} of {self.repository} is invalid.")
        if self.digest is not None and not _IMAGE_DIGEST.match(self.digest):
            raise InvalidSpec(f"Image digest {self.digest!r} of {self.repository} is not 'sha256:<64 hex digits>'.")
        if self.tag is None and self.digest is None:
            raise InvalidSpec(f"Image {self.repository} needs a tag or a digest; an unpinned image is refused.")

    @property
    def reference(self) -> str:
        """The image reference as it appears in the rendered pod spec."""
        if self.digest:
            return f"{self.repository}:{self.tag}@{self.digest}" if self.tag else f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag}"

    def kustomize_entry(self, placeholder: str) -> dict[str, str]:
        """The Kustomize `images:` entry mapping `placeholder` to this image."""
        entry = {"name": placeholder, "newName": self.repository}
        if self.tag:
            entry["newTag"] = self.tag
        if self.digest:
            entry["digest"] = self.digest
        return entry


def _setting_value(key: str, value: Any) -> str:
    # bool before int: bool is an int subclass, and "True" is not what a YAML/env reader expects.
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str | int):
        raise InvalidSpec(f"Setting {key!r} must be a string, an integer or a boolean, not {type(value).__name__}.")
    text = str(value)
    # Control characters cannot travel through YAML reliably (NEL becomes a line break, DEL is refused by
    # Kustomize) and have no business in an environment variable; tab and line breaks are fine.
    for char in text:
        if char not in "\t\n\r" and (unicodedata.category(char) in ("Cc", "Cs") or char in "\ufffe\uffff"):
            raise InvalidSpec(
                f"Setting {key!r} contains the control character U+{ord(char):04X}; only tab and line breaks "
                "are allowed."
            )
    return text


@dataclass(frozen=True, kw_only=True)
class OverlaySpec:
    """Everything particular to one instance. Validated on construction: invalid input raises InvalidSpec.

    `images` maps the base's placeholder image names (`smile-core`, `smile-nginx`, `memcached`, `postgres`,
    `smile-timemachine`) to real images. Mappings are copied into read-only proxies, so a spec cannot change
    after it has been validated.
    """

    instance: str
    organisation: str
    images: Mapping[str, ImageRef]
    host: str
    application: str = "smile"
    tls_secret_name: str = "smile-tls"
    ingress_class: str = "nginx"
    # Namespace of the ingress controller, the only one allowed to reach nginx.
    ingress_controller_namespace: str = "ingress-nginx"
    size: str = "small"
    settings: Mapping[str, Any] = field(default_factory=dict)
    timemachine_schedule: str = "0 2 * * *"
    timemachine_time_zone: str = "Europe/Paris"
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    namespace_prefix: str = DEFAULT_NAMESPACE_PREFIX
    base_path: Path = DEFAULT_BASE

    def __post_init__(self):
        validate_dns_label(self.instance, "Instance slug")
        validate_dns_label(self.organisation, "Organisation slug")
        validate_dns_label(self.application, "Application slug")
        validate_dns_label(self.namespace, "Namespace")
        validate_dns_subdomain(self.host, "Host")
        validate_dns_subdomain(self.tls_secret_name, "TLS secret name")
        validate_dns_subdomain(self.ingress_class, "Ingress class")
        validate_dns_label(self.ingress_controller_namespace, "Ingress controller namespace")
        if self.size not in SIZE_PROFILES:
            raise InvalidSpec(f"Size {self.size!r} is unknown; choose one of {', '.join(SIZE_PROFILES)}.")
        object.__setattr__(self, "size", str(self.size))
        object.__setattr__(self, "base_path", Path(self.base_path))
        validate_cron(self.timemachine_schedule)
        validate_time_zone(self.timemachine_time_zone)

        if not self.images:
            raise InvalidSpec("No images given: map every image placeholder of the base to a real image.")
        for placeholder, ref in self.images.items():
            if not isinstance(ref, ImageRef):
                raise InvalidSpec(f"Image {placeholder!r} must be an ImageRef, not {type(ref).__name__}.")
        object.__setattr__(self, "images", MappingProxyType(dict(sorted(self.images.items()))))

        settings = {}
        for key, value in self.settings.items():
            # The API server accepts only these characters in ConfigMap keys; refusing here is clearer
            # than a 422 in the middle of an apply.
            if not isinstance(key, str) or len(key) > DNS_SUBDOMAIN_MAX or not _CONFIGMAP_KEY.match(key):
                raise InvalidSpec(
                    f"Setting name {key!r} is invalid: use letters, digits, '-', '_' or '.' "
                    f"(at most {DNS_SUBDOMAIN_MAX})."
                )
            settings[key] = _setting_value(key, value)
        object.__setattr__(self, "settings", MappingProxyType(dict(sorted(settings.items()))))

        for key, value in self.extra_labels.items():
            validate_label(key, value)
            if key in IDENTITY_LABEL_KEYS or key.startswith(LABEL_PREFIX):
                raise InvalidSpec(f"Label {key!r} is reserved for the portal and cannot be an extra label.")
        object.__setattr__(self, "extra_labels", MappingProxyType(dict(sorted(self.extra_labels.items()))))

    @property
    def namespace(self) -> str:
        return namespace_name(self.namespace_prefix, self.instance)

    @property
    def profile(self) -> SizeResources:
        return SIZE_PROFILES[self.size]

    @property
    def identity_labels(self) -> dict[str, str]:
        """The labels status sync selects on; the same on every object, pod and volume of the instance."""
        return identity_labels(application=self.application, instance=self.instance, organisation=self.organisation)

    @property
    def settings_sha256(self) -> str:
        return hashlib.sha256(json.dumps(dict(self.settings), sort_keys=True).encode()).hexdigest()


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


def _pod_patch(container: str, resources: ContainerResources, **container_fields: Any) -> dict[str, Any]:
    # Containers merge by name in a strategic-merge patch: only the named container changes.
    return {"spec": {"containers": [{"name": container, "resources": resources.as_dict(), **container_fields}]}}


def build_patches(spec: OverlaySpec) -> list[dict[str, Any]]:
    """The overlay's patches. JSON 6902 where a list element must be addressed by position (Ingress rules,
    volumeClaimTemplates, LimitRange items) or a map replaced whole (quota); strategic merge elsewhere."""
    profile = spec.profile
    core_template = _pod_patch("core", profile.core)
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
            {"spec": {"replicas": profile.nginx_replicas, "template": _pod_patch("nginx", profile.nginx)}},
        ),
        _strategic_merge(
            "apps/v1",
            "Deployment",
            MEMCACHED_DEPLOYMENT,
            {
                "spec": {
                    "template": _pod_patch(
                        "memcached", profile.memcached, args=["-m", str(profile.memcached_cache_mib)]
                    )
                }
            },
        ),
        _strategic_merge(
            "apps/v1",
            "StatefulSet",
            DATABASE_STATEFULSET,
            {"spec": {"template": _pod_patch("postgres", profile.database)}},
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
                    "jobTemplate": {"spec": {"template": _pod_patch("timemachine", profile.timemachine)}},
                }
            },
        ),
        _json6902(
            "Ingress",
            INGRESS,
            [
                {"op": "replace", "path": "/spec/ingressClassName", "value": spec.ingress_class},
                {"op": "replace", "path": "/spec/rules/0/host", "value": spec.host},
                {"op": "replace", "path": "/spec/tls/0/hosts", "value": [spec.host]},
                {"op": "replace", "path": "/spec/tls/0/secretName", "value": spec.tls_secret_name},
            ],
            group="networking.k8s.io",
        ),
        _json6902(
            "NetworkPolicy",
            INGRESS_NETWORK_POLICY,
            [
                {
                    "op": "replace",
                    "path": "/spec/ingress/0/from/0/namespaceSelector/matchLabels",
                    "value": {"kubernetes.io/metadata.name": spec.ingress_controller_namespace},
                }
            ],
            group="networking.k8s.io",
        ),
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
    """The instance's Namespace; Pod Security admission enforces the `restricted` standard in it."""
    labels = {}
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = POD_SECURITY_LEVEL
        labels[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
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
