"""Identities: a single sign-on login links to an account only through an address both sides vouch for, added
addresses are verified before they count, and password reset links go only to trusted addresses.

The SSO logins are built by allauth's own OpenID Connect provider from the claims a provider would send (its real
parsing of ``sub``, ``email`` and ``email_verified``), then handed to the portal's adapter.
"""

import pytest
from allauth.account.models import EmailAddress
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import get_adapter
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core import mail
from django.test import RequestFactory
from django.urls import reverse

from core.auth import PortalSocialAccountAdapter, trusted_users_for
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db
VICTIM = "victim@unistra.example.org"


@pytest.fixture
def oidc(settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": "university",
                    "name": "University SSO",
                    "client_id": "portal-client",
                    "secret": "portal-client-secret",
                    "settings": {"server_url": "http://127.0.0.1:9/realms/uni", "uid_field": settings.OIDC_UID_CLAIM},
                }
            ]
        }
    }


def web_request():
    request = RequestFactory().get("/accounts/oidc/university/login/callback/")
    request.session = {}
    request._messages = FallbackStorage(request)
    return request


def sso_login(request, **claims):
    provider = get_adapter().get_provider(request, "university")
    return provider.sociallogin_from_response(request, {"userinfo": {"sub": "idp-123", **claims}})


def test_an_identity_that_merely_claims_an_address_does_not_take_over_its_account(oidc):
    victim = make_user("victim", email=VICTIM)
    request = web_request()
    login = sso_login(request, email=VICTIM, email_verified=False)

    with pytest.raises(ImmediateHttpResponse) as refused:
        PortalSocialAccountAdapter(request).pre_social_login(request, login)

    assert refused.value.response["Location"] == reverse("account_login")
    assert not login.is_existing and login.user.pk != victim.pk
    assert "did not confirm the address" in str(next(iter(request._messages)))


def test_a_claim_without_email_verified_is_not_trusted_either(oidc):
    make_user("victim", email=VICTIM)
    request = web_request()

    with pytest.raises(ImmediateHttpResponse):
        PortalSocialAccountAdapter(request).pre_social_login(request, sso_login(request, email=VICTIM))


def test_an_address_the_provider_verified_links_the_account(oidc):
    owner = make_user("owner", email=VICTIM)
    request = web_request()
    login = sso_login(request, email=VICTIM.upper(), email_verified=True)

    PortalSocialAccountAdapter(request).pre_social_login(request, login)

    assert login.is_existing and login.user == owner
    assert login.account.uid == "idp-123"


def test_a_university_provider_can_be_trusted_for_its_addresses(oidc, settings):
    settings.OIDC_TRUST_EMAIL = True
    owner = make_user("owner", email=VICTIM)
    request = web_request()
    login = sso_login(request, email=VICTIM)

    PortalSocialAccountAdapter(request).pre_social_login(request, login)

    assert login.user == owner


def test_an_address_someone_added_without_verifying_never_links(oidc):
    intruder = make_user("intruder", email="intruder@example.org")
    EmailAddress.objects.create(user=intruder, email=VICTIM, verified=False, primary=False)
    request = web_request()
    login = sso_login(request, email=VICTIM, email_verified=True)

    PortalSocialAccountAdapter(request).pre_social_login(request, login)

    assert not login.is_existing, "no account is trusted with that address, so nothing is linked"
    assert trusted_users_for(VICTIM) == []


def test_an_address_verified_in_the_portal_is_trusted(db):
    owner = make_user("owner", email="old@example.org")
    EmailAddress.objects.create(user=owner, email=VICTIM, verified=True, primary=False)

    assert trusted_users_for(VICTIM) == [owner]


@pytest.mark.parametrize("claim", ["sub", "eduPersonPrincipalName"])
def test_the_stable_identity_claim_is_configurable(settings, claim):
    settings.OIDC_UID_CLAIM = claim
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": "university",
                    "name": "SSO",
                    "client_id": "c",
                    "secret": "s",
                    "settings": {"server_url": "http://127.0.0.1:9/x", "uid_field": settings.OIDC_UID_CLAIM},
                }
            ]
        }
    }
    request = web_request()

    login = sso_login(request, eduPersonPrincipalName="jdoe@unistra.fr", email="j@x.org")

    assert login.account.uid == {"sub": "idp-123", "eduPersonPrincipalName": "jdoe@unistra.fr"}[claim]


def test_the_production_settings_pass_the_claim_to_the_provider(monkeypatch):
    import importlib

    import portal.settings

    monkeypatch.setenv("OIDC_SERVER_URL", "https://idp.example.org/realms/uni")
    monkeypatch.setenv("OIDC_CLIENT_ID", "c")
    monkeypatch.setenv("OIDC_CLIENT_SECRET", "s")
    monkeypatch.setenv("OIDC_UID_CLAIM", "eduPersonPrincipalName")
    try:
        reloaded = importlib.reload(portal.settings)
        app = reloaded.SOCIALACCOUNT_PROVIDERS["openid_connect"]["APPS"][0]
        assert app["settings"]["uid_field"] == "eduPersonPrincipalName"
    finally:
        monkeypatch.undo()
        importlib.reload(portal.settings)


# --- added addresses and password reset ----------------------------------------------------------------------


def test_an_added_address_counts_only_once_verified(client):
    user = make_user("someone", email="someone@example.org")
    client.login(username="someone", password=PASSWORD)
    mail.outbox.clear()

    response = client.post("/accounts/email/", {"action_add": "", "email": VICTIM})

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email == "someone@example.org", "the account keeps its address until the new one is confirmed"
    assert EmailAddress.objects.get(user=user, email=VICTIM).verified is False
    assert [message.to for message in mail.outbox] == [[VICTIM]], "a confirmation goes to the new address"
    assert trusted_users_for(VICTIM) == []


def test_a_reset_link_never_goes_to_an_unverified_address(client):
    intruder = make_user("intruder", email="intruder@example.org")
    EmailAddress.objects.create(user=intruder, email=VICTIM, verified=False, primary=False)
    mail.outbox.clear()

    client.post(reverse("account_reset_password"), {"email": VICTIM})

    assert all("intruder" not in message.body for message in mail.outbox)
    assert all("/password/reset/key/" not in message.body for message in mail.outbox)


def test_a_reset_link_goes_to_the_address_a_maintainer_set(client):
    make_user("someone", email="someone@example.org")
    mail.outbox.clear()

    client.post(reverse("account_reset_password"), {"email": "someone@example.org"})

    assert len(mail.outbox) == 1 and "/password/reset/key/" in mail.outbox[0].body


def test_a_maintainer_set_address_is_the_account_s_verified_address(db):
    user = make_user("someone", email="Someone@Example.org")

    row = EmailAddress.objects.get(user=user)

    assert (row.email, row.verified, row.primary) == ("someone@example.org", True, True)
    assert trusted_users_for("someone@example.org") == [user]


def test_an_address_two_accounts_share_belongs_to_the_account_that_held_it_first(oidc):
    first = make_user("first", email=VICTIM)
    make_user("second", email=VICTIM)
    request = web_request()
    login = sso_login(request, email=VICTIM, email_verified=True)

    PortalSocialAccountAdapter(request).pre_social_login(request, login)

    assert login.user == first, "the second account holds it unverified: allauth allows one verified holder"


def test_an_account_the_provider_creates_keeps_the_provider_s_word_on_its_address(oidc, settings):
    settings.OIDC_ALLOW_SIGNUP = True
    request = web_request()
    login = sso_login(request, email="new@unistra.example.org", email_verified=False, preferred_username="newcomer")

    user = PortalSocialAccountAdapter(request).save_user(request, login)

    row = EmailAddress.objects.get(user=user)
    assert (row.email, row.verified) == ("new@unistra.example.org", False), "not turned into a trusted address"
