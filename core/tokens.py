"""Creating and revoking personal API tokens: the one place that does it, audited, for the page, the API and the
``create_api_token`` command."""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import AuditContext, record
from core.errors import Conflict, NotAllowed
from core.models import ApiToken
from core.models.organisations import is_maintainer

MAX_EXPIRY_DAYS = 3650
MAX_ACTIVE_TOKENS_PER_USER = 50


def _snapshot(token: ApiToken) -> dict:
    return {
        "name": token.name,
        "prefix": token.token_key,
        "read_only": token.read_only,
        "expiry": token.expiry.isoformat() if token.expiry else None,
        "user": token.user.get_username(),
    }


def create_token(
    ctx: AuditContext, user, *, name: str, read_only: bool = False, expires_days: int | None = None
) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns the row and the token itself, which is never available again."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Name the token after what will use it.")})
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        raise ValidationError({"expires_days": _("Between 1 and %(max)d days, or none.") % {"max": MAX_EXPIRY_DAYS}})
    if not user.is_active:
        raise ValidationError(_("%(user)s is inactive.") % {"user": user.get_username()})
    if ApiToken.objects.filter(user=user).active().count() >= MAX_ACTIVE_TOKENS_PER_USER:
        raise Conflict(
            _("%(user)s already has %(n)d active tokens; revoke some first.")
            % {"user": user.get_username(), "n": MAX_ACTIVE_TOKENS_PER_USER}
        )
    expiry = datetime.timedelta(days=expires_days) if expires_days else None
    with transaction.atomic():
        token, secret = ApiToken.objects.create(user=user, expiry=expiry, name=name[:100], read_only=read_only)
        record(ctx, "token.created", token, label=str(token), after=_snapshot(token))
    return token, secret


def can_revoke(user, token: ApiToken) -> bool:
    return token.user_id == user.pk or is_maintainer(user)


def revoke_token(ctx: AuditContext, token: ApiToken, reason: str = "") -> bool:
    """Revoke ``token`` (its user or a maintainer); False when it already was."""
    if ctx.user is not None and not can_revoke(ctx.user, token):
        raise NotAllowed(_("Only the token's user or a maintainer can revoke it."))
    now = timezone.now()
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=now, revoked_by=ctx.user if ctx.user is not None else None
        )
        if not updated:
            return False
        token.revoked_at, token.revoked_by = now, ctx.user
        record(ctx, "token.revoked", token, label=str(token), before=_snapshot(token), reason=reason)
    return True
