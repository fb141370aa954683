"""Choices of the registry app: registry kinds, scan statuses and vulnerability severities."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class RegistryKind(models.TextChoices):
    QUAY = "quay", "Quay"
    HARBOR = "harbor", "Harbor"
    DISTRIBUTION = "distribution", _("Distribution (Docker registry v2)")


class ScanStatus(models.TextChoices):
    """What the registry's scanner says of an image, judged against ``PORTAL_REGISTRY_FAIL_SEVERITY``.

    An application's own scan policy (which severities block a deployment) is applied on top of the counts.
    """

    PASSED = "passed", _("passed")
    FAILED = "failed", _("failed")
    PENDING = "pending", _("pending")
    NOT_SCANNED = "not_scanned", _("not scanned")
    UNKNOWN = "unknown", _("unknown")


class Severity(models.TextChoices):
    """Vulnerability severities, from the least to the most serious (the order is used to compare them)."""

    UNKNOWN = "unknown", _("unknown")
    NEGLIGIBLE = "negligible", _("negligible")
    LOW = "low", _("low")
    MEDIUM = "medium", _("medium")
    HIGH = "high", _("high")
    CRITICAL = "critical", _("critical")

    @classmethod
    def rank(cls, value: str) -> int:
        return list(cls.values).index(value) if value in cls.values else 0

    @classmethod
    def normalise(cls, name: str | None) -> str:
        """A scanner's severity name (Quay's ``Defcon1``, Harbor's ``None``...) as one of ours."""
        value = (name or "").strip().lower()
        if value == "defcon1":
            return cls.CRITICAL
        if value in ("none", ""):
            return cls.NEGLIGIBLE if value == "none" else cls.UNKNOWN
        return value if value in cls.values else cls.UNKNOWN


class BlockingSeverity(models.TextChoices):
    """From which severity a vulnerability blocks a deployment (an application's scan policy)."""

    CRITICAL = "critical", _("Critical")
    HIGH = "high", _("High or Critical")
    MEDIUM = "medium", _("Medium or worse")
    LOW = "low", _("Low or worse")
    NEVER = "never", _("None (vulnerabilities never block)")
