"""Login, logout, password reset, rate limiting, closed sign-up and university single sign-on (OIDC)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from django.core import mail
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_and_logout(client, admin_unistra):
    response = client.post(reverse("account_login"), {"login": "admin-unistra", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 302


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(client, admin_unistra):
    response = client.post(reverse("account_login"), {"login": "admin-unistra", "password": "nope"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_failed_logins_are_rate_limited(client, admin_unistra, settings):
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "3/m/ip"}
    pages = [
        client.post(reverse("account_login"), {"login": "admin-unistra", "password": "nope"}).content.decode()
        for _ in range(4)
    ]
    assert all("Too many failed login attempts" not in page for page in pages[:3])
    assert "Too many failed login attempts" in pages[3]
    # Even the right password is refused while the limit holds.
    response = client.post(reverse("account_login"), {"login": "admin-unistra", "password": PASSWORD})
    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_password_reset_sends_a_link(client, admin_unistra):
    response = client.post(reverse("account_reset_password"), {"email": admin_unistra.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert "/accounts/password/reset/key/" in mail.outbox[0].body


def test_sign_up_is_closed(client):
    response = client.post(
        reverse("account_signup"),
        {"username": "intruder", "email": "i@example.org", "password1": "Xy-12345678", "password2": "Xy-12345678"},
    )
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username="intruder").exists()
    assert response.status_code in (200, 403)


class _Discovery(BaseHTTPRequestHandler):
    """A minimal OpenID provider: it only serves its discovery document."""

    def do_GET(self):
        base = f"http://127.0.0.1:{self.server.server_port}"
        if self.path.rstrip("/") == "/realms/uni/.well-known/openid-configuration":
            body = json.dumps(
                {
                    "issuer": f"{base}/realms/uni",
                    "authorization_endpoint": f"{base}/realms/uni/auth",
                    "token_endpoint": f"{base}/realms/uni/token",
                    "userinfo_endpoint": f"{base}/realms/uni/userinfo",
                    "jwks_uri": f"{base}/realms/uni/certs",
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def oidc_provider(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Discovery)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/realms/uni"
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "OAUTH_PKCE_ENABLED": True,
            "APPS": [
                {
                    "provider_id": "university",
                    "name": "University SSO",
                    "client_id": "portal-client",
                    "secret": "portal-client-secret",
                    "settings": {"server_url": url},
                }
            ],
        }
    }
    yield url
    server.shutdown()
    server.server_close()


def test_oidc_login_redirects_to_the_university_provider(client, oidc_provider):
    login_page = client.get(reverse("account_login"))
    assert "University SSO" in login_page.content.decode()
    start = "/accounts/oidc/university/login/"
    response = client.post(start)
    assert response.status_code == 302
    target = urlparse(response["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{oidc_provider}/auth"
    query = parse_qs(target.query)
    assert query["client_id"] == ["portal-client"]
    assert query["response_type"] == ["code"]
    assert "openid" in query["scope"][0]
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"][0].endswith("/accounts/oidc/university/login/callback/")
    assert "portal-client-secret" not in response["Location"]
