"""Per-instance Kustomize overlays, generated as data, and their rendering with the real Kustomize.

An instance is the shared base (`instances/bases/smile/`) plus a small overlay that says what is particular
to it: namespace, portal labels, images pinned by digest, host and TLS, size profile, settings and backup
schedule. Everything written here is built as Python dicts and serialised by PyYAML's safe dumper and `json.dumps`;
no user-supplied string is ever pasted into YAML text, so a setting such as "a\\nkind: Secret" stays a string.

The rendered output (`RenderedManifests`) is sorted deterministically, so the same spec always gives the same
YAML and the same sha256 — the hash recorded on each operation to tell whether anything changed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
import unicodedata
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from instances.kube.kustomize import Kustomize

DEFAULT_BASE = Path(__file__).resolve().parent.parent / "bases" / "smile"
DEFAULT_NAMESPACE_PREFIX = "saas-"
MANAGED_BY = "saas-portal"
LABEL_PREFIX = "saas-portal.io/"
# Kubernetes' "managed-by" convention; with the three saas-portal.io labels it lets status sync find every
# managed object of a cluster with one label-selector list call per kind.
IDENTITY_LABEL_KEYS = (
    "app.kubernetes.io/managed-by",
    f"{LABEL_PREFIX}application",
    f"{LABEL_PREFIX}instance",
    f"{LABEL_PREFIX}organisation",
)
SETTINGS_HASH_ANNOTATION = f"{LABEL_PREFIX}settings-sha256"
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

# Order in which a client should apply the objects (what others depend on first); the tail is alphabetical.
KIND_ORDER = (
    "Namespace",
    "ResourceQuota",
    "LimitRange",
    "NetworkPolicy",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Service",
    "StatefulSet",
    "Deployment",
    "CronJob",
    "Job",
    "Ingress",
)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_IMAGE_REPOSITORY = re.compile(
    r"^(?:[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(?:\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_IMAGE_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$")


# --- Validation helpers -------------------------------------------------------------------------------------


def validate_dns_label(value: str, what: str) -> str:
    """RFC 1123 label (namespace names, label values built from slugs); raises ValueError."""
    if not isinstance(value, str) or len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"{what} {value!r} is not a valid DNS label: use at most 63 lowercase letters, digits and hyphens, "
            "starting and ending with a letter or a digit."
        )
    return value


def validate_dns_subdomain(value: str, what: str) -> str:
    """RFC 1123 subdomain (host names, object names); raises ValueError."""
    if not isinstance(value, str) or len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ValueError(
            f"{what} {value!r} is not a valid DNS name: use at most 253 lowercase letters, digits, hyphens "
            "and dots, each part starting and ending with a letter or a digit."
        )
    return value


def validate_label(key: str, value: str) -> None:
    """A Kubernetes label: `[prefix/]name` key and a value of at most 63 characters; raises ValueError."""
    if not isinstance(key, str) or not isinstance(value, str):
        raise ValueError(f"Label {key!r}: key and value must be strings.")
    prefix, _, name = key.rpartition("/")
    if prefix:
        validate_dns_subdomain(prefix, f"Prefix of label key {key!r}:")
    if len(name) > 63 or not _LABEL_NAME.match(name):
        raise ValueError(
            f"Label key {key!r} is invalid: the name part must be at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or a digit."
        )
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise ValueError(
            f"Value {value!r} of label {key!r} is invalid: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or a digit."
        )


_CRON_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_NAMES = {name: number for number, name in enumerate(_MONTHS, start=1)}
_DAY_NAMES = {name: number for number, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# (name, lowest, highest, accepted names) of the five standard fields; day of week 7 is Sunday too.
_CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTH_NAMES),
    ("day of week", 0, 7, _DAY_NAMES),
)


def validate_cron(schedule: str) -> str:
    """Check a CronJob schedule: five standard fields or a macro such as `@daily`; raises ValueError.

    The time zone is a separate field (`timeZone`): Kubernetes rejects `TZ=`/`CRON_TZ=` inside the schedule.
    """
    if not isinstance(schedule, str) or not schedule.strip():
        raise ValueError("The backup schedule is empty; give a cron expression such as '0 2 * * *'.")
    text = schedule.strip()
    if text.lower() in _CRON_MACROS:
        return text
    if "TZ=" in text.upper():
        raise ValueError(f"Backup schedule {schedule!r}: set the time zone separately, not with TZ= in the schedule.")
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(
            f"Backup schedule {schedule!r} must have 5 fields (minute hour day-of-month month day-of-week), "
            f"not {len(parts)}."
        )
    for part, (name, low, high, names) in zip(parts, _CRON_FIELDS, strict=True):
        for item in part.split(","):
            _validate_cron_item(item, name, low, high, names, schedule)
    return text


def _validate_cron_item(item: str, name: str, low: int, high: int, names: Mapping[str, int], schedule: str) -> None:
    def number(token: str) -> int:
        if token.lower() in names:
            return names[token.lower()]
        if not token.isdigit():
            raise ValueError(f"Backup schedule {schedule!r}: {token!r} is not a valid {name}.")
        value = int(token)
        if not low <= value <= high:
            raise ValueError(f"Backup schedule {schedule!r}: {name} {value} is outside {low}-{high}.")
        return value

    span, slash, step = item.partition("/")
    if slash and (not step.isdigit() or int(step) == 0):
        raise ValueError(f"Backup schedule {schedule!r}: step {step!r} of the {name} must be a positive number.")
    if span == "*":
        return
    first, dash, last = span.partition("-")
    start = number(first)
    if dash and number(last) < start:
        raise ValueError(f"Backup schedule {schedule!r}: the {name} range {span!r} runs backwards.")


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


# --- Specification ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRef:
    """Where a base image placeholder really comes from. A digest, when known, wins over the tag."""

    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self):
        if not isinstance(self.repository, str) or not _IMAGE_REPOSITORY.match(self.repository):
            raise ValueError(f"Image repository {self.repository!r} is not a valid image name (no tag or digest).")
        if self.tag is not None and not _IMAGE_TAG.match(self.tag):
            raise ValueError(f"Image tag {self.tag!r} of {self.repository} is invalid.")
        if self.digest is not None and not _IMAGE_DIGEST.match(self.digest):
            raise ValueError(f"Image digest {self.digest!r} of {self.repository} is not 'sha256:<64 hex digits>'.")
        if self.tag is None and self.digest is None:
            raise ValueError(f"Image {self.repository} needs a tag or a digest; an unpinned image is refused.")

    @property
    def reference(self) -> str:
        """The image reference as it appears in the rendered pod spec."""
        return f"{self.repository}@{self.digest}" if self.digest else f"{self.repository}:{self.tag}"

    def kustomize_entry(self, placeholder: str) -> dict[str, str]:
        """The Kustomize `images:` entry mapping `placeholder` to this image."""
        entry = {"name": placeholder, "newName": self.repository}
        if self.digest:
            entry["digest"] = self.digest
        else:
            entry["newTag"] = self.tag
        return entry


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
class SizeProfile:
    """Everything a size changes. The quota leaves room for one surge pod per Deployment (maxSurge 1) and
    two backup pods (the scheduled Job and a manual one), so a rolling update never stalls on the quota."""

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


class Size(StrEnum):
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


_NO_EXPOSED_SERVICES = {"services.loadbalancers": "0", "services.nodeports": "0"}

SIZE_PROFILES: Mapping[Size, SizeProfile] = MappingProxyType(
    {
        Size.SMALL: SizeProfile(
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
        Size.MEDIUM: SizeProfile(
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
                    "limits.memory": "12Gi",
                    "pods": "20",
                    "persistentvolumeclaims": "2",
                    "requests.storage": "40Gi",
                    **_NO_EXPOSED_SERVICES,
                }
            ),
        ),
        Size.LARGE: SizeProfile(
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


def _setting_value(key: str, value: Any) -> str:
    # bool before int: bool is an int subclass, and "True" is not what a YAML/env reader expects.
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str | int):
        raise ValueError(f"Setting {key!r} must be a string, an integer or a boolean, not {type(value).__name__}.")
    text = str(value)
    # Control characters cannot travel through YAML reliably (NEL becomes a line break, DEL is refused by
    # Kustomize) and have no business in an environment variable; tab and line breaks are fine.
    for char in text:
        if char not in "\t\n\r" and (unicodedata.category(char) in ("Cc", "Cs") or char in "\ufffe\uffff"):
            raise ValueError(
                f"Setting {key!r} contains the control character U+{ord(char):04X}; only tab and line breaks "
                "are allowed."
            )
    return text


@dataclass(frozen=True, kw_only=True)
class OverlaySpec:
    """Everything particular to one instance. Validated on construction: invalid input raises ValueError.

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
    size: Size = Size.SMALL
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
        try:
            size = Size(self.size)
        except ValueError:
            raise ValueError(
                f"Size {self.size!r} is unknown; choose one of {', '.join(s.value for s in Size)}."
            ) from None
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "base_path", Path(self.base_path))
        validate_cron(self.timemachine_schedule)
        if self.timemachine_time_zone not in _time_zones():
            raise ValueError(f"Time zone {self.timemachine_time_zone!r} is unknown (use an IANA name).")

        if not self.images:
            raise ValueError("No images given: map every image placeholder of the base to a real image.")
        for placeholder, ref in self.images.items():
            if not isinstance(ref, ImageRef):
                raise ValueError(f"Image {placeholder!r} must be an ImageRef, not {type(ref).__name__}.")
        object.__setattr__(self, "images", MappingProxyType(dict(sorted(self.images.items()))))

        settings = {}
        for key, value in self.settings.items():
            # The API server accepts only these characters in ConfigMap keys; refusing here is clearer
            # than a 422 in the middle of an apply.
            if not isinstance(key, str) or len(key) > 253 or not _CONFIGMAP_KEY.match(key):
                raise ValueError(
                    f"Setting name {key!r} is invalid: use letters, digits, '-', '_' or '.' (at most 253)."
                )
            settings[key] = _setting_value(key, value)
        object.__setattr__(self, "settings", MappingProxyType(dict(sorted(settings.items()))))

        for key, value in self.extra_labels.items():
            validate_label(key, value)
            if key in IDENTITY_LABEL_KEYS or key.startswith(LABEL_PREFIX):
                raise ValueError(f"Label {key!r} is reserved for the portal and cannot be an extra label.")
        object.__setattr__(self, "extra_labels", MappingProxyType(dict(sorted(self.extra_labels.items()))))

    @property
    def namespace(self) -> str:
        return f"{self.namespace_prefix}{self.instance}"

    @property
    def profile(self) -> SizeProfile:
        return SIZE_PROFILES[Size(self.size)]

    @property
    def identity_labels(self) -> dict[str, str]:
        """The labels status sync selects on; the same on every object, pod and volume of the instance."""
        return dict(
            zip(IDENTITY_LABEL_KEYS, (MANAGED_BY, self.application, self.instance, self.organisation), strict=True)
        )

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


# libyaml's C implementation when PyYAML has it: parsing and writing manifests is most of a render's Python time.
_SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ManifestDumper(_SafeDumper):
    """Safe dumper writing multi-line strings (scripts, settings) as literal blocks, for people reading the
    stored manifests. PyYAML falls back to a quoted style whenever a block cannot represent the string."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ManifestDumper.add_representer(str, _represent_str)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_ManifestDumper, sort_keys=True, default_flow_style=False, allow_unicode=False)


def _dump_all(documents: list[Any]) -> str:
    return yaml.dump_all(
        documents, Dumper=_ManifestDumper, sort_keys=True, default_flow_style=False, allow_unicode=False
    )


def write_overlay(spec: OverlaySpec, directory: str | os.PathLike[str]) -> Path:
    """Write the overlay (kustomization.yaml + namespace.yaml) into `directory` and return that directory.

    The base is referenced by its path relative to `directory`, as Kustomize wants for local resources.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    base_reference = Path(os.path.relpath(spec.base_path.resolve(), directory.resolve())).as_posix()
    (directory / "kustomization.yaml").write_text(_dump(build_kustomization(spec, base_reference)), "utf-8")
    (directory / NAMESPACE_FILE).write_text(_dump(build_namespace(spec)), "utf-8")
    return directory


# --- Rendering ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedManifests:
    """The objects of one instance as Kustomize rendered them, in apply order, with their YAML and its hash."""

    objects: list[dict[str, Any]]
    yaml: str
    sha256: str

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """The rendered object of this kind and name; KeyError if there is none."""
        for obj in self.objects:
            if obj["kind"] == kind and obj["metadata"]["name"] == name:
                return obj
        raise KeyError(f"{kind}/{name}")


def sort_key(obj: Mapping[str, Any]) -> tuple:
    """Apply order by kind, then a total order (apiVersion, namespace, name) so the output is deterministic."""
    kind = obj.get("kind", "")
    rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    metadata = obj.get("metadata") or {}
    return (rank, kind, obj.get("apiVersion", ""), metadata.get("namespace", ""), metadata.get("name", ""))


def pod_spec(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod spec inside a workload object (Deployment, StatefulSet, Job, CronJob, ...), or None."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template")
    return (template or {}).get("spec") if isinstance(template, Mapping) else None


def _check_images(spec: OverlaySpec, objects: list[dict[str, Any]]) -> None:
    # A placeholder without a mapping would stay e.g. "smile-core" and be pulled from Docker Hub; refuse.
    expected = {ref.reference for ref in spec.images.values()}
    for obj in objects:
        pod = pod_spec(obj) or {}
        for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            if container.get("image") not in expected:
                raise ValueError(
                    f"Container {container.get('name')!r} of {obj['kind']}/{obj['metadata']['name']} uses image "
                    f"{container.get('image')!r}, which the overlay's images do not map; "
                    f"mapped placeholders: {', '.join(spec.images)}."
                )


def render(spec: OverlaySpec, *, kustomize: Kustomize | None = None) -> RenderedManifests:
    """Render the instance with Kustomize: the base is copied next to the generated overlay in a temporary
    directory (a snapshot, so a concurrent edit of the base cannot give a half-old render), then built.

    Raises KustomizeError when Kustomize fails (e.g. a broken base), ValueError when an image placeholder
    of the base is left unmapped.
    """
    kustomize = kustomize or Kustomize()
    with tempfile.TemporaryDirectory(prefix="saas-portal-render-") as tmp:
        root = Path(tmp)
        base_copy = root / "base"
        if spec.base_path.is_dir():
            shutil.copytree(spec.base_path, base_copy)
        # When the base is missing the reference still points at root/base, so Kustomize reports it.
        overlay_dir = write_overlay(replace(spec, base_path=base_copy), root / "overlay")
        output = kustomize.build(overlay_dir)

    objects = sorted((obj for obj in yaml.load_all(output, Loader=SafeLoader) if obj), key=sort_key)
    _check_images(spec, objects)
    text = _dump_all(objects)
    return RenderedManifests(objects=objects, yaml=text, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())
