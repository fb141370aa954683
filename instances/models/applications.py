"""The catalog: applications the portal can run, and their versions."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from instances.versions import validate_version, version_sort_key


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

    class Meta:
        ordering = ["name"]
        verbose_name = _("application")
        verbose_name_plural = _("applications")

    def __str__(self) -> str:
        return self.name

    def image_refs(self, version: str) -> dict[str, dict[str, str]]:
        """Repository and tag of every image for ``version`` (digests come from the registry when known)."""
        return {
            placeholder: {"repository": spec["repository"], "tag": spec.get("tag") or version}
            for placeholder, spec in sorted(self.images.items())
        }


class ApplicationVersionQuerySet(models.QuerySet):
    def available(self) -> "ApplicationVersionQuerySet":
        return self.filter(is_available=True)


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
