"""The catalog: applications the portal can run, where their images come from, and their versions."""

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from instances.choices import Component, VersionSource
from instances.versions import validate_version, version_sort_key
from registry.choices import BlockingSeverity
from registry.policy import ScanPolicy

DEFAULT_RELEASE_PATTERN = r"^\d+\.\d+\.\d+$"


def validate_pattern(value: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationError(_("Not a valid regular expression: %(error)s"), params={"error": exc}) from exc


class Application(models.Model):
    """A web application offered as a service (SMILE first). Its Kustomize base says how to deploy it."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    slug = models.SlugField(_("slug"), max_length=40, unique=True)
    description = models.TextField(_("description"), blank=True)
    kustomize_base = models.CharField(
        _("Kustomize base"),
        max_length=200,
        default="smile",
        help_text=_("Folder of the application's Kustomize base, under the portal's bases directory."),
    )
    images = models.JSONField(
        _("images"),
        default=dict,
        blank=True,
        help_text=_(
            'Image placeholder of the base -> {"repository": ..., "tag": ...}. '
            "Without a tag, the image follows the application's version."
        ),
    )
    backup_cronjob = models.CharField(
        _("backup CronJob"), max_length=253, blank=True, help_text=_("Name of the CronJob that dumps the database.")
    )
    restore_cronjob = models.CharField(
        _("restore CronJob"),
        max_length=253,
        blank=True,
        help_text=_(
            "Name of the suspended CronJob whose Job template restores a dump (restores and restore drills); "
            "empty: the application cannot be restored."
        ),
    )
    release_pattern = models.CharField(
        _("release pattern"),
        max_length=200,
        default=DEFAULT_RELEASE_PATTERN,
        validators=[validate_pattern],
        help_text=_("Registry tags matching this regular expression are versions; others (branch builds) are not."),
    )
    scan_block_at = models.CharField(
        _("vulnerabilities that block"),
        max_length=16,
        choices=BlockingSeverity.choices,
        default=BlockingSeverity.CRITICAL,
        help_text=_("A version whose images have vulnerabilities of this severity cannot be deployed."),
    )
    allow_not_scanned = models.BooleanField(
        _("allow images not scanned"),
        default=False,
        help_text=_("Whether a version whose images the registry did not scan may be deployed."),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("application")
        verbose_name_plural = _("applications")

    def __str__(self) -> str:
        return self.name

    def image_refs(self, version: str) -> dict[str, dict[str, str]]:
        """Repository and tag of every image of the ``images`` map for ``version`` (no digest: the images of the
        components in a registry are resolved to digests from it, see ``instances.catalogue``)."""
        return {
            placeholder: {"repository": spec["repository"], "tag": spec.get("tag") or version}
            for placeholder, spec in sorted(self.images.items())
        }

    @property
    def scan_policy(self) -> ScanPolicy:
        return ScanPolicy(block_at=self.scan_block_at, allow_not_scanned=self.allow_not_scanned)


class ApplicationComponent(models.Model):
    """One component of an application whose image comes from a registry repository: its tags are the versions.

    With components, an application's versions come from the registry (tags present in every component's
    repository and matching the release pattern); without, they are typed in by hand.
    """

    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="components", verbose_name=_("application")
    )
    component = models.CharField(_("component"), max_length=16, choices=Component.choices)
    placeholder = models.CharField(
        _("image placeholder"), max_length=100, help_text=_("Image name used in the Kustomize base, e.g. smile-core.")
    )
    repository = models.ForeignKey(
        "registry.ImageRepository", on_delete=models.PROTECT, related_name="components", verbose_name=_("repository")
    )

    class Meta:
        ordering = ["application", "component"]
        verbose_name = _("application component")
        verbose_name_plural = _("application components")
        constraints = [
            models.UniqueConstraint(fields=["application", "component"], name="component_unique_per_app"),
            models.UniqueConstraint(fields=["application", "placeholder"], name="component_placeholder_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.application} {self.get_component_display()}"


class ApplicationVersionQuerySet(models.QuerySet):
    def available(self) -> "ApplicationVersionQuerySet":
        return self.filter(is_available=True)

    def deployable(self) -> "ApplicationVersionQuerySet":
        return self.filter(is_available=True, deployable=True)


class ApplicationVersion(models.Model):
    """A released version of an application that instances may run."""

    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="versions", verbose_name=_("application")
    )
    version = models.CharField(_("version"), max_length=60, validators=[validate_version])
    sort_key = models.CharField(max_length=100, editable=False, db_index=True)
    is_available = models.BooleanField(
        _("available"), default=True, help_text=_("Only available versions can be requested.")
    )
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=16, choices=VersionSource.choices, default=VersionSource.MANUAL)
    deployable = models.BooleanField(
        _("deployable"), default=True, help_text=_("Every image of the version passes the application's scan policy.")
    )
    # Why not: [{"component", "code", "count", "block_at", "cves"}] (see registry.policy.describe).
    blockers = models.JSONField(_("blockers"), default=list, blank=True, editable=False)
    # Image placeholder -> {"repository", "tag", "digest"}, as the registry's last sync saw the version.
    images = models.JSONField(_("images"), default=dict, blank=True, editable=False)

    objects = ApplicationVersionQuerySet.as_manager()

    class Meta:
        ordering = ["application__name", "-sort_key"]
        verbose_name = _("application version")
        verbose_name_plural = _("application versions")
        constraints = [
            models.UniqueConstraint(fields=["application", "version"], name="appversion_unique_per_app"),
        ]

    def __str__(self) -> str:
        return self.version

    def save(self, *args, **kwargs):
        self.sort_key = version_sort_key(self.version)
        if kwargs.get("update_fields") is not None and "version" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "sort_key"}
        super().save(*args, **kwargs)

    def is_newer_than(self, other: "ApplicationVersion | None") -> bool:
        return other is None or self.sort_key > other.sort_key

    @property
    def blocker_lines(self) -> list[str]:
        """Why the version may not be deployed, one line per component, in the reader's language."""
        from registry.policy import describe

        return [describe(blocker) for blocker in self.blockers or []]
