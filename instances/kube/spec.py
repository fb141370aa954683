"""What is particular to one instance, as the overlay generator wants it: ``OverlaySpec`` and ``ImageRef``,
validated on construction so that nothing Kubernetes or Kustomize would refuse reaches a render.

Everything is checked against the rules of ``names`` and ``schedule``; invalid input raises ``InvalidSpec``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from instances.kube.kinds import IDENTITY_LABEL_KEYS, LABEL_PREFIX, identity_labels
from instances.kube.names import (
    DNS_SUBDOMAIN_MAX,
    InvalidSpec,
    namespace_name,
    validate_dns_label,
    validate_dns_subdomain,
    validate_label,
)
from instances.kube.schedule import validate_cron, validate_time_zone
from instances.kube.sizes import SIZE_PROFILES, SizeResources

DEFAULT_BASE = Path(__file__).resolve().parent.parent / "bases" / "smile"
DEFAULT_NAMESPACE_PREFIX = "saas-"
# Pod Security admission checks pods against the standard as it was in this Kubernetes version: pinned, so that
# a cluster upgrade cannot tighten (or loosen) what the instances' pods must satisfy without a portal release.
DEFAULT_POD_SECURITY_VERSION = "v1.31"

_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_IMAGE_REPOSITORY = re.compile(
    r"^(?:[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(?:\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_IMAGE_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$")
_POD_SECURITY_VERSION = re.compile(r"^v1\.[0-9]{1,3}$")


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

    @property
    def pull_policy(self) -> str:
        """A digest names one content forever, so a cached copy is that image; a tag may have moved since the node
        pulled it, so it is pulled again (and the registry checks the node's right to it) at every start."""
        return "IfNotPresent" if self.digest else "Always"

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


def _network(value: str) -> str:
    """A CIDR block in its canonical form (``192.0.2.7`` -> ``192.0.2.7/32``), for a NetworkPolicy ipBlock."""
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except (TypeError, ValueError):
        raise InvalidSpec(f"Backup storage address {value!r} is not an IP network such as 192.0.2.0/24.") from None


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
    # A cert-manager ClusterIssuer that issues the certificate into `tls_secret_name`; empty: provided otherwise.
    tls_cluster_issuer: str = ""
    ingress_class: str = "nginx"
    # Namespace of the ingress controller, the only one allowed to reach nginx.
    ingress_controller_namespace: str = "ingress-nginx"
    size: str = "small"
    settings: Mapping[str, Any] = field(default_factory=dict)
    timemachine_schedule: str = "0 2 * * *"
    timemachine_time_zone: str = "Europe/Paris"
    # Where the backup Jobs may connect: the storage's port, and its addresses when known (else any address).
    backup_storage_port: int = 443
    backup_storage_cidrs: tuple[str, ...] = ()
    pod_security_version: str = DEFAULT_POD_SECURITY_VERSION
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
        if self.tls_cluster_issuer:
            validate_dns_subdomain(self.tls_cluster_issuer, "TLS cluster issuer")
        validate_dns_subdomain(self.ingress_class, "Ingress class")
        validate_dns_label(self.ingress_controller_namespace, "Ingress controller namespace")
        if self.size not in SIZE_PROFILES:
            raise InvalidSpec(f"Size {self.size!r} is unknown; choose one of {', '.join(SIZE_PROFILES)}.")
        object.__setattr__(self, "size", str(self.size))
        object.__setattr__(self, "base_path", Path(self.base_path))
        validate_cron(self.timemachine_schedule)
        validate_time_zone(self.timemachine_time_zone)
        port = self.backup_storage_port
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InvalidSpec(f"Backup storage port {port!r} is not a TCP port (1-65535).")
        object.__setattr__(self, "backup_storage_cidrs", tuple(_network(c) for c in self.backup_storage_cidrs))
        if not isinstance(self.pod_security_version, str) or not _POD_SECURITY_VERSION.match(self.pod_security_version):
            raise InvalidSpec(
                f"Pod Security version {self.pod_security_version!r} must be a Kubernetes version such as v1.31 "
                "(not 'latest', which would change with the cluster)."
            )

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
