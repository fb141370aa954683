"""Login limits behind a reverse proxy, the client address, request ids, and the Content-Security-Policy.

django-axes counts failed logins per account and client address on every path that checks a password (the portal's
login, the admin's); the client address is read through ``PORTAL_TRUSTED_PROXIES`` proxies, the same one the audit
trail records.
"""

import pytest
from django.test import RequestFactory
from django.urls import reverse

from core.middleware import client_ip_of
from core.models import AuditEvent
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db
PROXY = "10.0.0.1"


@pytest.fixture
def axes(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    settings.PORTAL_TRUSTED_PROXIES = 1


def portal_login(client, username, password, client_address):
    return client.post(
        reverse("account_login"),
        {"login": username, "password": password},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=client_address,
    )


def admin_login(client, username, password, address="192.0.2.10"):
    return client.post("/admin/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_the_admin_login_is_limited(client, axes):
    root = make_user("root")
    root.is_staff = root.is_superuser = True
    root.save()

    failures = [admin_login(client, "root", "wrong").status_code for _ in range(3)]
    locked = admin_login(client, "root", PASSWORD)

    assert failures == [200, 200, 429], "the third failure reaches the limit"
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_an_attacker_behind_the_proxy_locks_out_no_one_else(client, axes, admin_unistra, viewer_unistra):
    attacker = "203.0.113.9"
    for _ in range(4):
        portal_login(client, "admin-unistra", "wrong", attacker)
    locked = portal_login(client, "admin-unistra", PASSWORD, attacker)

    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert portal_login(client, "viewer-unistra", PASSWORD, "198.51.100.7").status_code == 302
    client.logout()
    assert portal_login(client, "admin-unistra", PASSWORD, "198.51.100.8").status_code == 302, (
        "the account itself is not locked: its owner logs in from their own address"
    )


@pytest.mark.parametrize(
    ("trusted", "forwarded", "remote", "expected"),
    [
        (0, "", "192.0.2.1", "192.0.2.1"),
        (0, "198.51.100.7", "192.0.2.1", "192.0.2.1"),  # no proxy trusted: a client's header proves nothing
        (1, "198.51.100.7", PROXY, "198.51.100.7"),
        (1, "6.6.6.6, 198.51.100.7", PROXY, "198.51.100.7"),  # what the client wrote itself is ignored
        (2, "6.6.6.6, 198.51.100.7, 10.0.0.2", PROXY, "198.51.100.7"),
        (2, "198.51.100.7", PROXY, "198.51.100.7"),  # fewer hops than proxies: the leftmost there is
        (1, "not-an-address", PROXY, None),
        (1, "", PROXY, PROXY),
    ],
)
def test_the_client_address_is_read_through_the_trusted_proxies(settings, trusted, forwarded, remote, expected):
    settings.PORTAL_TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)

    assert client_ip_of(request) == expected


def test_the_audit_trail_records_the_address_the_limits_count(client, settings, admin_unistra, instance_unistra):
    settings.PORTAL_TRUSTED_PROXIES = 1
    client.force_login(admin_unistra)

    client.post(
        f"/instances/{instance_unistra.slug}/backup/",
        {},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7",
    )

    assert AuditEvent.objects.get(action="request.submitted").ip_address == "198.51.100.7"


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("3f2a9c4e-1b7d-4c1e-9f00-123456789abc", True),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", True),
        ("<script>alert(1)</script>", False),
        ("abc\nINJECTED log line", False),
        ("x" * 65, False),
        ("", False),
        ("-starts-with-a-dash", False),
    ],
)
def test_a_request_id_is_kept_only_in_a_safe_form(client, sent, kept):
    response = client.get(reverse("account_login"), HTTP_X_REQUEST_ID=sent)

    echoed = response["X-Request-ID"]
    assert (echoed == sent) is kept
    assert echoed.isprintable() and 0 < len(echoed) <= 64


def test_pages_carry_a_content_security_policy_without_inline_scripts(client, admin_unistra):
    client.force_login(admin_unistra)

    policy = client.get("/")["Content-Security-Policy"]

    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert directives["frame-ancestors"] == "'none'"


def test_the_api_docs_load_their_start_up_script_from_a_url(client, admin_unistra):
    client.force_login(admin_unistra)

    page = client.get("/api/v1/docs/").content.decode()

    assert "<script>" not in page.replace(" ", "")
    assert "script src=" in page
