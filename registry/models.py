"""Image registries, their repositories and tags (digest, scan), and the alerts a moved tag raises."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core.crypto import EncryptedTextField
from registry.choices import RegistryKind, ScanStatus, Severity


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class Registry(models.Model):
    """An image registry the portal reads (Quay, Harbor or a Distribution v2 registry).

    Credentials are encrypted at rest and never shown: a user name and a password or robot secret (basic auth, also
    sent to a Distribution token server), or a secret alone (a bearer token, e.g. a Quay OAuth token).
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=RegistryKind.choices)
    url = models.URLField(_("URL"), help_text=_("Base URL of the registry, e.g. https://quay.io."))
    username = models.CharField(_("user name"), max_length=200, blank=True)
    secret = EncryptedTextField(_("password or token"), blank=True)
    verify_tls = models.BooleanField(_("verify TLS certificates"), default=True)
    webhook_secret = EncryptedTextField(
        _("webhook secret"),
        default=new_webhook_secret,
        help_text=_("Shared with the registry's push notifications; they must present it."),
    )
    last_sync_at = models.DateTimeField(_("last sync"), null=True, blank=True, editable=False)
    last_error = models.TextField(_("last error"), blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("registry")
        verbose_name_plural = _("registries")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("instances:registry_detail", kwargs={"pk": self.pk})

    @property
    def host(self) -> str:
        """The registry's host (and port) as image references name it, e.g. ``quay.io`` or ``127.0.0.1:5000``."""
        return urlsplit(self.url).netloc


class ImageRepository(models.Model):
    """One image repository of a registry (``smile/core``); its tags are refreshed by the sync."""

    registry = models.ForeignKey(
        Registry, on_delete=models.CASCADE, related_name="repositories", verbose_name=_("registry")
    )
    path = models.CharField(
        _("path"), max_length=255, help_text=_("Repository path in the registry, e.g. smile/core (no host, no tag).")
    )
    last_sync_at = models.DateTimeField(_("last sync"), null=True, blank=True, editable=False)
    last_error = models.TextField(_("last error"), blank=True, editable=False)

    class Meta:
        ordering = ["registry__name", "path"]
        verbose_name = _("image repository")
        verbose_name_plural = _("image repositories")
        constraints = [models.UniqueConstraint(fields=["registry", "path"], name="imagerepository_unique_path")]

    def __str__(self) -> str:
        return self.reference

    @property
    def reference(self) -> str:
        """The repository as an image reference names it, e.g. ``quay.io/smile/core``."""
        return f"{self.registry.host}/{self.path}"


class ImageTagQuerySet(models.QuerySet):
    def present(self) -> ImageTagQuerySet:
        return self.filter(present=True)


class ImageTag(models.Model):
    """A tag of a repository as the last sync saw it: its digest (and the first one ever seen, so that a tag that
    moved is known), when it was pushed, its size, and what the registry's scanner found."""

    repository = models.ForeignKey(
        ImageRepository, on_delete=models.CASCADE, related_name="tags", verbose_name=_("repository")
    )
    tag = models.CharField(_("tag"), max_length=128)
    digest = models.CharField(_("digest"), max_length=200)
    first_digest = models.CharField(_("first digest seen"), max_length=200)
    present = models.BooleanField(_("present"), default=True, help_text=_("Still in the registry at the last sync."))
    pushed_at = models.DateTimeField(_("pushed at"), null=True, blank=True)
    size = models.BigIntegerField(_("size"), null=True, blank=True)
    scan_status = models.CharField(
        _("scan status"), max_length=16, choices=ScanStatus.choices, default=ScanStatus.UNKNOWN
    )
    # severity -> number of vulnerabilities, and the vulnerabilities themselves: [{"id": "CVE-...", "severity": ...}].
    vulnerability_counts = models.JSONField(_("vulnerabilities by severity"), default=dict, blank=True)
    vulnerabilities = models.JSONField(_("vulnerabilities"), default=list, blank=True)
    first_seen_at = models.DateTimeField(_("first seen"), auto_now_add=True)
    last_seen_at = models.DateTimeField(_("last seen"), auto_now=True)

    objects = ImageTagQuerySet.as_manager()

    class Meta:
        ordering = ["repository", "tag"]
        verbose_name = _("image tag")
        verbose_name_plural = _("image tags")
        constraints = [models.UniqueConstraint(fields=["repository", "tag"], name="imagetag_unique_tag")]

    def __str__(self) -> str:
        return f"{self.repository.path}:{self.tag}"

    @property
    def serious_vulnerabilities(self) -> list[str]:
        """Ids of the vulnerabilities that make the scan fail (``PORTAL_REGISTRY_FAIL_SEVERITY`` and above)."""
        threshold = Severity.rank(settings.PORTAL_REGISTRY_FAIL_SEVERITY)
        return [v["id"] for v in self.vulnerabilities or [] if Severity.rank(v.get("severity", "")) >= threshold]


class TagOverwriteQuerySet(models.QuerySet):
    def open(self) -> TagOverwriteQuerySet:
        return self.filter(resolved_at__isnull=True)


class TagOverwrite(models.Model):
    """A tag the sync found pointing to another digest than before: a re-push, which the release rules forbid.

    It stays open (a banner on the registry page and on every instance running the old digest) until a maintainer
    marks it resolved.
    """

    tag = models.ForeignKey(ImageTag, on_delete=models.CASCADE, related_name="overwrites", verbose_name=_("tag"))
    old_digest = models.CharField(_("old digest"), max_length=200, db_index=True)
    new_digest = models.CharField(_("new digest"), max_length=200)
    detected_at = models.DateTimeField(_("detected at"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.CharField(_("resolved by"), max_length=200, blank=True)

    objects = TagOverwriteQuerySet.as_manager()

    class Meta:
        ordering = ["-detected_at", "-id"]
        verbose_name = _("tag overwrite")
        verbose_name_plural = _("tag overwrites")

    def __str__(self) -> str:
        return f"{self.tag} {self.old_digest[:19]} -> {self.new_digest[:19]}"
