"""Authentication policy: no self-service sign-up; single sign-on users exist only if a maintainer created them."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings


class PortalAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return False


class PortalSocialAccountAdapter(DefaultSocialAccountAdapter):
    """An SSO login connects to an existing account with the same verified e-mail; it never creates one."""

    def is_open_for_signup(self, request, sociallogin) -> bool:
        return getattr(settings, "OIDC_ALLOW_SIGNUP", False)

    def pre_social_login(self, request, sociallogin) -> None:
        if sociallogin.is_existing:
            return
        from django.contrib.auth import get_user_model

        email = (sociallogin.user.email or "").strip()
        if not email:
            return
        user = get_user_model().objects.filter(email__iexact=email, is_active=True).first()
        if user is not None:
            sociallogin.connect(request, user)
