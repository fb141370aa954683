"""Instances: one isolated deployment of an application for one organisation."""

from django.conf import settings
from django.core.validators import MaxLengthValidator, RegexValidator
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core.crypto import EncryptedTextField
from core.models.organisations import TenantQuerySet
from core.transitions import GuardedStatus
from instances.choices import INSTANCE_TRANSITIONS, InstanceSize, InstanceStatus
from instances.kube import names

# A DNS label (RFC 1123), because the slug becomes the namespace and the host name.
validate_dns_label = RegexValidator(
    names.DNS_LABEL_PATTERN,
    _("Use lowercase letters, digits and hyphens; start and end with a letter or a digit."),
    code="invalid_slug",
)
# Storage keys end up in a credentials file (one "name = value" per line): no spaces, no line breaks.
validate_storage_key = RegexValidator(
    r"^[\x21-\x7e]+\Z", _("Use printable characters without spaces or line breaks."), code="invalid_storage_key"
)
# Shorter than a DNS label (63) so that the namespace prefix and derived names (``<slug>-tls``) still fit.
SLUG_MAX_LENGTH = 40


class InstanceQuerySet(TenantQuerySet):
    def active(self) -> "InstanceQuerySet":
        return self.exclude(status=InstanceStatus.DELETED)


def default_hostname(slug: str, cluster=None) -> str:
    """The one host rule: ``<slug>.<domain>``, the domain of the instance's cluster or the portal's default."""
    return names.hostname(slug, cluster.domain if cluster is not None else settings.PORTAL_INSTANCE_DOMAIN)


class Instance(GuardedStatus):
    """One running copy of an application for one organisation ("unique, isolated, independent").

    Its status changes only through :meth:`transition` (table ``INSTANCE_TRANSITIONS``), each change audited.
    """

    TRANSITIONS = INSTANCE_TRANSITIONS
    audit_name = "instance"
    audit_fields = ("current_version", "drift")

    organisation = models.ForeignKey(
        "core.Organisation", on_delete=models.PROTECT, related_name="instances", verbose_name=_("organisation")
    )
    application = models.ForeignKey(
        "instances.Application", on_delete=models.PROTECT, related_name="instances", verbose_name=_("application")
    )
    slug = models.CharField(
        _("slug"),
        max_length=SLUG_MAX_LENGTH,
        unique=True,
        validators=[validate_dns_label, MaxLengthValidator(SLUG_MAX_LENGTH)],
        help_text=_("Name of the instance, used for its namespace and host (a DNS label, at most 40 characters)."),
    )
    hostname = models.CharField(_("host name"), max_length=253, unique=True)
    current_version = models.ForeignKey(
        "instances.ApplicationVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("current version"),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=InstanceStatus.choices, default=InstanceStatus.PROVISIONING
    )
    cluster = models.ForeignKey(
        "instances.Cluster",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="instances",
        verbose_name=_("cluster"),
    )
    size = models.CharField(_("size"), max_length=16, choices=InstanceSize.choices, default=InstanceSize.SMALL)
    settings = models.JSONField(
        _("settings"), default=dict, blank=True, help_text=_("Application settings (strings), put in its ConfigMap.")
    )
    backup_schedule = models.CharField(
        _("backup schedule"), max_length=100, default="0 2 * * *", help_text=_("Cron expression, cluster time.")
    )
    drift = models.BooleanField(_("drift"), default=False, help_text=_("Running images differ from what was applied."))
    drift_detail = models.TextField(_("drift detail"), blank=True)
    applied_images = models.JSONField(
        _("applied images"), default=dict, blank=True, editable=False, help_text=_("kind/name -> images last applied.")
    )
    images = models.JSONField(
        _("images"),
        default=dict,
        blank=True,
        editable=False,
        help_text=_("Image placeholder -> repository, tag and digest the instance runs."),
    )
    applied_objects = models.JSONField(
        _("applied objects"),
        default=dict,
        blank=True,
        editable=False,
        help_text=_("Every object last applied to the cluster: key -> hash of its manifest and its resourceVersion."),
    )
    # The instance's OWN key at the backup storage, limited to its prefix (README, "Backup credentials"). The
    # secret half is encrypted at rest, written only through the admin's write-only field, and not editable
    # so that no form or audit snapshot ever copies it.
    backup_access_key_id = models.CharField(
        _("backup access key ID"),
        max_length=128,
        blank=True,
        validators=[validate_storage_key],
        help_text=_("This instance's own key at the backup storage, allowed only under instances/<slug>/."),
    )
    backup_secret_access_key = EncryptedTextField(
        _("backup secret access key"), blank=True, editable=False, validators=[validate_storage_key]
    )
    synced_at = models.DateTimeField(_("last status sync"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = InstanceQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]
        verbose_name = _("instance")
        verbose_name_plural = _("instances")

    def __str__(self) -> str:
        return self.slug

    def get_absolute_url(self) -> str:
        return reverse("instances:instance_detail", kwargs={"slug": self.slug})

    @property
    def namespace(self) -> str:
        """The instance's own Kubernetes namespace."""
        return names.namespace_name(settings.PORTAL_NAMESPACE_PREFIX, self.slug)

    @property
    def accepts_requests(self) -> bool:
        """Deleted instances, and those being deleted, take no new request."""
        return self.status not in (InstanceStatus.DELETED, InstanceStatus.DELETING)

    @property
    def is_deleted(self) -> bool:
        return self.status == InstanceStatus.DELETED
