"""How the API recognises a personal token, limits guessing, and keeps read-only tokens read-only."""

from __future__ import annotations

from hmac import compare_digest

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.settings import CONSTANTS
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission

from core.models import ApiToken

# Both spellings are accepted: `Bearer` is what OAuth-minded tools send, `Token` what the API first documented.
HEADER_PREFIXES = (b"bearer", b"token")
# A token is "sp_" and 64 hexadecimal characters; anything much longer is not worth hashing.
MAX_TOKEN_LENGTH = 200


class TooManyFailures(exceptions.Throttled):
    default_detail = _l("Too many failed token attempts from your address; wait before trying again.")


# Failed token attempts are counted by django-axes, like failed logins, as attempts on this pseudo account from the
# client's address: every guess from one address counts together, and no real account is locked by them.
TOKEN_LOGIN = "api-token"
TOKEN_CREDENTIALS = {"username": TOKEN_LOGIN}


class PersonalTokenAuthentication(TokenAuthentication):
    """django-rest-knox's token check, with the portal's rules on top.

    - ``Authorization: Bearer <token>`` and ``Authorization: Token <token>`` both work.
    - A revoked or expired token answers 401 saying so (knox would delete an expired token and say "invalid").
    - Failed attempts are counted by django-axes per client address (the trusted one, as for logins); past
      ``PORTAL_LOGIN_FAILURE_LIMIT`` every unknown token from that address answers 429 for the cool-off time, so
      guessing costs the guesser time. Only guesses count (unknown tokens, malformed headers): a revoked or expired
      token is a known one, and a valid token always passes, so a forgotten cron job on a shared address locks
      nobody out.
    - A successful use records the token's last-used time (at most once a minute).
    """

    def authenticate(self, request):
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() not in HEADER_PREFIXES:
            return None  # not ours: another scheme, or a browser session
        if len(auth) != 2:
            self._fail(request, _("Invalid token header: give one token after the scheme, with no spaces."))
        try:
            token = auth[1].decode("ascii")
        except UnicodeDecodeError:
            token = ""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            self._fail(request, _("Invalid token."))
        return self._authenticate_token(request, token)

    def _authenticate_token(self, request, token: str):
        digest = hash_token(token)
        candidates = ApiToken.objects.filter(token_key=token[: CONSTANTS.TOKEN_KEY_LENGTH]).select_related("user")
        for candidate in candidates:
            if not compare_digest(digest, candidate.digest):
                continue
            if candidate.is_revoked:
                raise exceptions.AuthenticationFailed(
                    _("This token was revoked; create a new one on your API tokens page.")
                )
            if candidate.is_expired:
                when = formats.date_format(timezone.localtime(candidate.expiry), "DATETIME_FORMAT")
                raise exceptions.AuthenticationFailed(
                    _("This token expired on %(date)s; create a new one.") % {"date": when}
                )
            if not candidate.user.is_active:
                raise exceptions.AuthenticationFailed(_("This token's user is inactive."))
            candidate.touch()
            return candidate.user, candidate
        self._fail(request, _("Invalid token."))

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'

    @staticmethod
    def _check_not_locked_out(request) -> None:
        if settings.AXES_ENABLED and AxesProxyHandler.is_locked(request._request, TOKEN_CREDENTIALS):
            raise TooManyFailures(wait=settings.AXES_COOLOFF_TIME.total_seconds())

    @classmethod
    def _fail(cls, request, message: str):
        """A guess: refused with 429 while its address is locked out, otherwise counted and refused with 401."""
        cls._check_not_locked_out(request)
        user_login_failed.send(
            sender=PersonalTokenAuthentication, credentials=TOKEN_CREDENTIALS, request=request._request
        )
        raise exceptions.AuthenticationFailed(message)


class TokenScopePermission(BasePermission):
    """A read-only token may only read; a browser session or a full token may do what its user may."""

    message = _l("This token is read-only.")

    def has_permission(self, request, view) -> bool:
        token = request.auth
        return not (isinstance(token, ApiToken) and token.read_only and request.method not in SAFE_METHODS)
