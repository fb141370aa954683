"""Personal API tokens: what automation authenticates with, stored the way passwords are (never in clear)."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.models import AbstractAuthToken, AuthTokenManager
from knox.settings import CONSTANTS

# How often the last-used time of a token is written: a script calling every second costs one write a minute.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


class ApiTokenQuerySet(models.QuerySet):
    def active(self, now: datetime.datetime | None = None) -> ApiTokenQuerySet:
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(models.Q(expiry__isnull=True) | models.Q(expiry__gt=now))


class ApiToken(AbstractAuthToken):
    """A personal API token of one user (django-rest-knox's token, with the portal's own fields).

    Only a SHA-512 digest of the token and its first characters (``token_key``, to find it) are stored; the token
    itself is shown once, when it is created. A token acts with its user's rights, or only reads when
    ``read_only``. A revoked or expired token is kept (not deleted) so that it answers "revoked" or "expired"
    rather than "unknown", and so that the audit trail keeps pointing at something.
    """

    # A plain id (knox makes the digest the primary key): pages, URLs and the audit trail name tokens by it.
    id = models.BigAutoField(primary_key=True)
    digest = models.CharField(max_length=CONSTANTS.DIGEST_LENGTH, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=100, help_text=_("What uses it, e.g. “GitLab CI of smile”."))
    read_only = models.BooleanField(_("read only"), default=False, help_text=_("Only GET, HEAD and OPTIONS."))
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("revoked by"),
    )

    # knox's manager (its create() returns the row and the token in clear, once) with the portal's queries.
    objects = AuthTokenManager.from_queryset(ApiTokenQuerySet)()

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.token_key}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expiry is not None and self.expiry <= timezone.now()

    @property
    def is_active(self) -> bool:
        return not self.is_revoked and not self.is_expired

    def touch(self) -> None:
        """Record a use, at most once per :data:`LAST_USED_RESOLUTION` (one conditional UPDATE, no read)."""
        now = timezone.now()
        if self.last_used_at is not None and now - self.last_used_at < LAST_USED_RESOLUTION:
            return
        type(self).objects.filter(pk=self.pk).filter(
            models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
        self.last_used_at = now
