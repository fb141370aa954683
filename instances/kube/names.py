"""Kubernetes name rules, stated once: DNS labels and subdomains, label keys and values, and the names the
portal derives from an instance (its namespace, its host, the Jobs it starts).

Validators raise ``InvalidSpec`` (a ValueError) saying which rule failed; the Django validators of the
models are built from the same patterns.
"""

from __future__ import annotations

import re

DNS_LABEL_MAX = 63
DNS_SUBDOMAIN_MAX = 253
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_LABEL = re.compile(DNS_LABEL_PATTERN)
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_DNS_SUBDOMAIN = re.compile(DNS_SUBDOMAIN_PATTERN)
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


class InvalidSpec(ValueError):
    """Input that Kubernetes (or the overlay built from it) would refuse: a name, label, host, setting, image."""


def validate_dns_label(value: str, what: str) -> str:
    """RFC 1123 label (namespace names, label values built from slugs)."""
    if not isinstance(value, str) or len(value) > DNS_LABEL_MAX or not _DNS_LABEL.match(value):
        raise InvalidSpec(
            f"{what} {value!r} is not a valid DNS label: use at most {DNS_LABEL_MAX} lowercase letters, digits and "
            "hyphens, starting and ending with a letter or a digit."
        )
    return value


def validate_dns_subdomain(value: str, what: str) -> str:
    """RFC 1123 subdomain (host names, object names)."""
    if not isinstance(value, str) or len(value) > DNS_SUBDOMAIN_MAX or not _DNS_SUBDOMAIN.match(value):
        raise InvalidSpec(
            f"{what} {value!r} is not a valid DNS name: use at most {DNS_SUBDOMAIN_MAX} lowercase letters, digits, "
            "hyphens and dots, each part starting and ending with a letter or a digit."
        )
    return value


def validate_label(key: str, value: str) -> None:
    """A Kubernetes label: ``[prefix/]name`` key and a value of at most 63 characters."""
    if not isinstance(key, str) or not isinstance(value, str):
        raise InvalidSpec(f"Label {key!r}: key and value must be strings.")
    prefix, _, name = key.rpartition("/")
    if prefix:
        validate_dns_subdomain(prefix, f"Prefix of label key {key!r}:")
    if len(name) > DNS_LABEL_MAX or not _LABEL_NAME.match(name):
        raise InvalidSpec(
            f"Label key {key!r} is invalid: the name part must be at most {DNS_LABEL_MAX} letters, digits, '-', "
            "'_' or '.', starting and ending with a letter or a digit."
        )
    if len(value) > DNS_LABEL_MAX or not _LABEL_VALUE.match(value):
        raise InvalidSpec(
            f"Value {value!r} of label {key!r} is invalid: at most {DNS_LABEL_MAX} letters, digits, '-', '_' or "
            "'.', starting and ending with a letter or a digit."
        )


def namespace_name(prefix: str, instance: str) -> str:
    """An instance's own namespace."""
    return f"{prefix}{instance}"


def hostname(instance: str, domain: str) -> str:
    """An instance's default host: ``<instance>.<domain>``."""
    return f"{instance}.{domain}"


def job_name(*parts: object) -> str:
    """A Job name made of ``parts``, cut to a DNS label (63 characters, no trailing hyphen)."""
    return "-".join(str(part) for part in parts)[:DNS_LABEL_MAX].rstrip("-")
