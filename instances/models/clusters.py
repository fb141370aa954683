"""Kubernetes clusters the portal deploys to."""

from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.crypto import EncryptedTextField, UnreadableSecret
from instances.choices import ClusterConnection
from instances.kube import names

validate_dns_subdomain = RegexValidator(
    names.DNS_SUBDOMAIN_PATTERN,
    _("Use lowercase letters, digits, hyphens and dots; each part starts and ends with a letter or a digit."),
    code="invalid_name",
)


class Cluster(models.Model):
    """A Kubernetes cluster; every instance lives on one. Its kubeconfig is encrypted at rest and never shown."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    connection = models.CharField(
        _("connection"), max_length=16, choices=ClusterConnection.choices, default=ClusterConnection.KUBECONFIG
    )
    kubeconfig = EncryptedTextField(_("kubeconfig"), blank=True)
    context = models.CharField(_("kubeconfig context"), max_length=200, blank=True)
    ingress_class = models.CharField(_("ingress class"), max_length=100, default="nginx")
    ingress_namespace = models.CharField(
        _("ingress controller namespace"),
        max_length=63,
        default="ingress-nginx",
        help_text=_("Namespace whose pods may reach the instances' web servers."),
    )
    domain = models.CharField(_("default domain"), max_length=200, default="apps.example.org")
    tls_cluster_issuer = models.CharField(
        _("certificate issuer"),
        max_length=253,
        blank=True,
        validators=[validate_dns_subdomain],
        help_text=_(
            "cert-manager ClusterIssuer that issues each instance's TLS certificate; empty when certificates come "
            "from elsewhere (a wildcard certificate of the ingress controller, or secrets created by hand)."
        ),
    )
    is_default = models.BooleanField(_("default cluster"), default=False)
    reachable = models.BooleanField(_("reachable"), null=True, editable=False)
    server_version = models.CharField(_("server version"), max_length=64, blank=True, editable=False)
    checked_at = models.DateTimeField(_("checked at"), null=True, blank=True, editable=False)
    last_error = models.TextField(_("last error"), blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("cluster")
        verbose_name_plural = _("clusters")
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="one_default_cluster"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_emulated(self) -> bool:
        """An emulated API server (the sandbox) says so in its version, e.g. ``v1.32.0-kubesim``."""
        return "kubesim" in self.server_version

    def client(self):
        """A client for this cluster, with the portal's timeouts on every call. A kubeconfig that cannot be read
        or used raises ``PermanentClusterError``, as any other refusal of the cluster does."""
        from django.conf import settings

        from instances.kube.client import ClusterClient
        from instances.kube.errors import PermanentClusterError

        timeout = (settings.PORTAL_KUBE_CONNECT_TIMEOUT, settings.PORTAL_KUBE_READ_TIMEOUT)
        if self.connection == ClusterConnection.IN_CLUSTER:
            return ClusterClient.in_cluster(timeout=timeout)
        if isinstance(self.kubeconfig, UnreadableSecret):
            raise PermanentClusterError(UnreadableSecret.reason)
        return ClusterClient.from_kubeconfig(self.kubeconfig, context=self.context or None, timeout=timeout)
