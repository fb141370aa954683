"""Git repositories that hold an instruction file, polled by the portal (see instances.instructions)."""

from urllib.parse import urlsplit, urlunsplit

from django.core.validators import MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core import messages
from core.crypto import EncryptedTextField


def display_url(url: str) -> str:
    """``url`` without any user name or password it carries (the form refuses them, old rows may hold them)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url


class InstructionSource(models.Model):
    """A file in a git repository whose lines become change requests, imported again when its branch moves.

    Maintainers configure it; the periodic job (``instances.instructions.jobs``) reads the branch's head, and when
    the commit changed imports the file as the system actor. The password or token is encrypted at rest and never
    shown. A failure keeps the last good commit and report and records why in ``last_error``.
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    url = models.CharField(
        _("repository URL"),
        max_length=500,
        help_text=_("e.g. https://git.example.org/hosting/instructions.git; credentials go in the fields below."),
    )
    branch = models.CharField(_("branch"), max_length=200, default="main")
    path = models.CharField(
        _("file path"), max_length=500, default="instructions.txt", help_text=_("Path of the file in the repository.")
    )
    application = models.ForeignKey(
        "instances.Application",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("application"),
        help_text=_("Application of the instances its C lines create; empty: the portal's default."),
    )
    poll_interval = models.PositiveIntegerField(
        _("poll interval (seconds)"), default=300, validators=[MinValueValidator(60)]
    )
    username = models.CharField(_("user name"), max_length=200, blank=True)
    secret = EncryptedTextField(_("password or token"), blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    last_commit = models.CharField(_("last commit"), max_length=64, blank=True, editable=False)
    last_report = models.JSONField(_("last import report"), null=True, blank=True, editable=False)
    last_imported_at = models.DateTimeField(_("last imported at"), null=True, blank=True, editable=False)
    last_polled_at = models.DateTimeField(_("last polled at"), null=True, blank=True, editable=False)
    last_error = models.TextField(_("last error"), blank=True, editable=False)
    # The error as a message to translate for each reader (see core.messages); ``last_error`` holds it in English.
    last_error_message = models.JSONField(_("last error (translatable)"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("instruction source")
        verbose_name_plural = _("instruction sources")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("instances:instruction_source_detail", kwargs={"pk": self.pk})

    @property
    def safe_url(self) -> str:
        return display_url(self.url)

    @property
    def last_error_display(self) -> str:
        return messages.render(self.last_error_message, self.last_error)

    @property
    def short_commit(self) -> str:
        return self.last_commit[:10]

    def snapshot(self) -> dict:
        """What the audit trail records of a source (never its secret)."""
        return {
            "name": self.name,
            "url": self.safe_url,
            "branch": self.branch,
            "path": self.path,
            "application": self.application_id,
            "poll_interval": self.poll_interval,
            "username": self.username,
            "enabled": self.enabled,
        }
