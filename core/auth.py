"""Authentication policy: no self-service sign-up; single sign-on users exist only if a maintainer created them, and
an e-mail address is trusted only when someone vouched for it.

An address is *trusted* for a user when it is verified in the portal (allauth's ``EmailAddress.verified``), or when
it is the account's own ``email`` as a maintainer set it (the user never added it themselves: there is no pending,
unverified ``EmailAddress`` row for it). Only trusted addresses link a single sign-on login to an account and
receive password reset links; users change their address through allauth's verified "change e-mail" flow, so
``User.email`` only ever holds a trusted address and notifications go there.
"""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.forms import ResetPasswordForm
from allauth.account.models import EmailAddress
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.shortcuts import redirect
from django.utils.translation import gettext as _


def trusted_users_for(email: str) -> list:
    """Active users for whom ``email`` is a trusted address (see the module's docstring)."""
    email = (email or "").strip()
    if not email:
        return []
    verified = EmailAddress.objects.filter(email__iexact=email, verified=True).values("user")
    pending = EmailAddress.objects.filter(email__iexact=email, verified=False).values("user")
    users = get_user_model().objects.filter(is_active=True)
    by_field = users.filter(email__iexact=email).exclude(pk__in=pending)
    return list(users.filter(pk__in=verified).union(by_field))


def login_name_of(request, credentials) -> str:
    """The account a login attempt is for, as django-axes counts it: allauth sends ``username`` or ``email``."""
    credentials = credentials or {}
    name = credentials.get("username") or credentials.get("email") or (request.POST.get("login") if request else "")
    return (name or "").strip().lower()


class PortalAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return False

    def get_client_ip(self, request) -> str:
        """allauth's own rate limits count the same client address as the audit trail (trusted proxies)."""
        from core.middleware import client_ip_of

        return client_ip_of(request) or request.META.get("REMOTE_ADDR", "")


class TrustedAddressResetPasswordForm(ResetPasswordForm):
    """allauth's reset form, sending links only to trusted addresses: an address someone added to their own account
    without verifying it (perhaps somebody else's) never receives one."""

    def clean_email(self) -> str:
        email = super().clean_email()
        trusted = {user.pk for user in trusted_users_for(email)}
        self.users = [user for user in self.users if user.pk in trusted]
        return email


class PortalSocialAccountAdapter(DefaultSocialAccountAdapter):
    """An SSO login connects to an existing account only through an address both sides vouch for; it never creates
    an account (unless ``OIDC_ALLOW_SIGNUP``).

    The identity provider must say the address is verified (the ``email_verified`` claim), unless the portal is
    told to trust its addresses (``OIDC_TRUST_EMAIL``, for a university's own provider, whose addresses it issues).
    The account's side must be a trusted address. Otherwise an identity that merely *claims* someone's address
    would take over their account: the login is refused with a message saying how to connect instead.
    """

    def is_open_for_signup(self, request, sociallogin) -> bool:
        return getattr(settings, "OIDC_ALLOW_SIGNUP", False)

    def save_user(self, request, sociallogin, form=None):
        # An account the provider creates gets the addresses the provider vouched for (allauth records them with
        # their verified flag), not the maintainer-set treatment of record_trusted_address.
        sociallogin.user._skip_trusted_address = True
        return super().save_user(request, sociallogin, form)

    def pre_social_login(self, request, sociallogin) -> None:
        if sociallogin.is_existing:
            return
        email = self._claimed_email(sociallogin)
        if not email:
            return
        users = trusted_users_for(email)
        if len(users) != 1:
            return  # no account (sign-up is closed, allauth says so), or an address two accounts share: no guess
        if not (settings.OIDC_TRUST_EMAIL or self._verified_by_provider(sociallogin, email)):
            messages.error(
                request,
                _(
                    "Your identity provider did not confirm the address %(email)s, so it cannot open the portal "
                    "account that uses it. Log in with your password and connect your single sign-on account from "
                    "your account page, or ask a maintainer."
                )
                % {"email": email},
            )
            raise ImmediateHttpResponse(redirect("account_login"))
        sociallogin.connect(request, users[0])

    @staticmethod
    def _claimed_email(sociallogin) -> str:
        for address in sociallogin.email_addresses:
            if address.primary and address.email:
                return address.email.strip()
        return (sociallogin.user.email or "").strip()

    @staticmethod
    def _verified_by_provider(sociallogin, email: str) -> bool:
        return any(
            address.verified and address.email.strip().lower() == email.lower()
            for address in sociallogin.email_addresses
        )


def record_trusted_address(user) -> None:  # core/migrations/0005 applies the same rules to existing accounts
    """Make ``user.email`` the account's primary, verified address in allauth's table, if it is not there yet.

    ``User.email`` is only ever set by maintainers (admin, commands) or by allauth once an address is verified
    (sign-up is closed), so it is trusted. allauth needs it as a row: without one, adding a second address would
    leave the account with no address at all until the new one is confirmed.
    """
    email = (user.email or "").strip()
    if getattr(user, "_skip_trusted_address", False):
        return
    if not email or EmailAddress.objects.filter(user=user, email__iexact=email).exists():
        return
    has_primary = EmailAddress.objects.filter(user=user, primary=True).exists()
    # An address another account already holds verified stays unverified here: shared, it identifies no one.
    taken = EmailAddress.objects.filter(email__iexact=email, verified=True).exists()
    EmailAddress.objects.create(user=user, email=email.lower(), verified=not taken, primary=not has_primary)


def lockout_response(request, original_response=None, credentials=None):
    """django-axes' answer to a locked-out attempt: JSON for the API (its errors are JSON), a page elsewhere."""
    from django.http import JsonResponse
    from django.shortcuts import render

    cool_off = settings.AXES_COOLOFF_TIME
    if request.path.startswith("/api/"):
        detail = _("Too many failed attempts from your address; wait before trying again.")
        response = JsonResponse({"detail": detail}, status=429)
    else:
        response = render(request, "account/locked_out.html", status=429)
    response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response
