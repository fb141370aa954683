"""Personal API tokens: hashed at rest, shown once, Bearer or Token, read-only scope, expiry, revocation, audit,
and failed attempts rate limited per client address."""

import datetime
import io

import pytest
from axes.models import AccessAttempt
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from core.audit import AuditContext
from core.models import ApiToken, AuditEvent
from core.models.tokens import LAST_USED_RESOLUTION
from core.tokens import create_token, revoke_token
from instances.models import ChangeRequest
from tests.conftest import PASSWORD

UPDATE = {"kind": "update", "instance": "smile-unistra", "version": "1.2.6"}


def new_token(user, **options) -> tuple[ApiToken, str]:
    return create_token(AuditContext.system("tests"), user, name=options.pop("name", "ci"), **options)


def api(secret: str, scheme: str = "Bearer") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {secret}")
    return client


@pytest.mark.parametrize("scheme", ["Bearer", "Token", "bearer"])
def test_a_token_authenticates_with_either_scheme(admin_unistra, instance_unistra, scheme):
    _token, secret = new_token(admin_unistra)

    response = api(secret, scheme).get("/api/v1/instances/")

    assert response.status_code == 200
    assert [item["slug"] for item in response.json()["results"]] == ["smile-unistra"]


def test_only_a_digest_and_a_prefix_are_stored(admin_unistra):
    token, secret = new_token(admin_unistra)

    row = ApiToken.objects.values().get(pk=token.pk)
    assert secret.startswith("sp_") and len(secret) == 3 + 64
    assert secret not in {str(value) for value in row.values()}
    assert row["token_key"] == secret[:15] and len(row["digest"]) == 128


def test_a_use_is_recorded_at_most_once_a_minute(admin_unistra):
    token, secret = new_token(admin_unistra)
    client = api(secret)

    client.get("/api/v1/organisations/")
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    client.get("/api/v1/organisations/")
    assert first is not None
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first, "not written again within the minute"

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - LAST_USED_RESOLUTION)
    client.get("/api/v1/organisations/")
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first


def test_a_read_only_token_reads_but_never_writes(admin_unistra, instance_unistra, versions):
    _token, secret = new_token(admin_unistra, read_only=True)
    client = api(secret)

    assert client.get("/api/v1/requests/").status_code == 200
    response = client.post("/api/v1/requests/", UPDATE, format="json")

    assert response.status_code == 403
    assert response.json() == {"detail": "This token is read-only."}
    assert not ChangeRequest.objects.exists()


def test_an_expired_token_says_so(admin_unistra):
    token, secret = new_token(admin_unistra, expires_days=1)
    ApiToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - datetime.timedelta(minutes=1))

    response = api(secret).get("/api/v1/instances/")

    assert response.status_code == 401
    assert response.json()["detail"].startswith("This token expired on ")
    assert ApiToken.objects.filter(pk=token.pk).exists(), "kept, so that it keeps answering 'expired'"


def test_a_revoked_token_says_so_and_the_revocation_is_audited(admin_unistra, maintainer):
    token, secret = new_token(admin_unistra)
    assert api(secret).get("/api/v1/instances/").status_code == 200

    assert revoke_token(AuditContext(user=maintainer, label="maintainer"), token, reason="leaked in a log")
    response = api(secret).get("/api/v1/instances/")

    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    event = AuditEvent.objects.get(action="token.revoked")
    assert (event.actor, event.reason, event.before["prefix"]) == (maintainer, "leaked in a log", token.token_key)
    assert not revoke_token(AuditContext(user=maintainer), token), "a second revocation changes nothing"


def test_an_unknown_token_is_401_with_a_bearer_challenge(db):
    response = api("sp_" + "0" * 64).get("/api/v1/instances/")

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Token " + "x" * 500, "Bearer \u00e9t\u00e9"])
def test_a_malformed_header_is_401(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header.encode().decode("latin-1"))

    response = client.get("/api/v1/instances/")

    assert response.status_code == 401
    assert "detail" in response.json()


def test_failed_attempts_are_counted_by_axes_per_address(settings, admin_unistra):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    _token, secret = new_token(admin_unistra)
    bad = api("sp_" + "1" * 64)

    revoked, revoked_secret = new_token(admin_unistra, name="forgotten cron job")
    revoke_token(AuditContext.system("tests"), revoked)
    stale = [api(revoked_secret).get("/api/v1/instances/").status_code for _ in range(5)]
    statuses = [bad.get("/api/v1/instances/").status_code for _ in range(4)]
    good = api(secret).get("/api/v1/instances/")

    assert stale == [401] * 5, "a revoked token is a known one: it does not count as a guess"
    assert statuses == [401, 401, 429, 429], "the third guess reaches the limit"
    assert bad.get("/api/v1/instances/")["Content-Type"] == "application/json"
    locked_out = bad.get("/api/v1/instances/")
    assert locked_out.status_code == 429 and int(locked_out["Retry-After"]) > 0
    assert "failed token attempts" in locked_out.json()["detail"]
    assert good.status_code == 200, "a valid token from the same address still works"
    assert AccessAttempt.objects.get().username == "api-token", "recorded by axes, as the pseudo account"


def test_the_user_rate_limit_answers_429(monkeypatch, admin_unistra):
    from rest_framework.throttling import UserRateThrottle

    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "2/minute", "anon": "60/minute"})
    _token, secret = new_token(admin_unistra)
    client = api(secret)

    statuses = [client.get("/api/v1/organisations/").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


# --- the page ------------------------------------------------------------------------------------------------


def test_the_page_shows_a_new_token_once_and_audits_it(client, admin_unistra, instance_unistra):
    client.login(username="admin-unistra", password=PASSWORD)

    response = client.post("/account/tokens/", {"name": "GitLab CI", "read_only": "on", "expires_days": "30"})

    assert response.status_code == 200
    secret = response.context["new_token"]
    token = ApiToken.objects.get(user=admin_unistra)
    assert secret in response.content.decode() and "no-store" in response["Cache-Control"]
    assert (token.name, token.read_only) == ("GitLab CI", True)
    assert abs(token.expiry - (timezone.now() + datetime.timedelta(days=30))) < datetime.timedelta(minutes=1)
    assert secret not in client.get("/account/tokens/").content.decode()
    assert api(secret).get("/api/v1/instances/").status_code == 200
    event = AuditEvent.objects.get(action="token.created")
    assert (event.actor, event.after["read_only"]) == (admin_unistra, True)
    assert secret not in str(event.after)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x", "expires_days": "0"}, "expires_days"),
        ({"name": "x", "expires_days": "many"}, "expires_days"),
    ],
)
def test_the_page_explains_a_bad_form(client, admin_unistra, data, field):
    client.login(username="admin-unistra", password=PASSWORD)

    response = client.post("/account/tokens/", data)

    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not ApiToken.objects.exists()


def test_users_revoke_their_own_tokens_and_not_others(client, admin_unistra, admin_unicaen):
    mine, _ = new_token(admin_unistra)
    theirs, _ = new_token(admin_unicaen)
    client.login(username="admin-unistra", password=PASSWORD)

    assert client.post(f"/account/tokens/{theirs.pk}/revoke/").status_code == 404
    assert client.post(f"/account/tokens/{mine.pk}/revoke/").status_code == 302

    assert ApiToken.objects.get(pk=mine.pk).revoked_at is not None
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is None
    page = client.get("/account/tokens/").content.decode()
    assert mine.token_key in page and theirs.token_key not in page


def test_maintainers_see_and_revoke_everyone_s_tokens(client, maintainer, admin_unicaen, django_assert_max_num_queries):
    for i in range(3):
        new_token(admin_unicaen, name=f"ci-{i}")
    theirs = ApiToken.objects.filter(user=admin_unicaen).first()
    client.login(username="maintainer", password=PASSWORD)

    with django_assert_max_num_queries(12):
        page = client.get("/account/tokens/")
    assert page.content.decode().count("admin-unicaen") >= 3
    assert client.post(f"/account/tokens/{theirs.pk}/revoke/").status_code == 302
    assert ApiToken.objects.get(pk=theirs.pk).revoked_by == maintainer


# --- the API and the command ---------------------------------------------------------------------------------


def test_the_api_lists_own_tokens_and_revokes_them(admin_unistra, admin_unicaen, maintainer):
    mine, secret = new_token(admin_unistra)
    theirs, _ = new_token(admin_unicaen)
    client = api(secret)

    listed = client.get("/api/v1/tokens/").json()["results"]
    assert [item["prefix"] for item in listed] == [mine.token_key]
    assert "digest" not in listed[0] and "token" not in listed[0]
    assert client.post(f"/api/v1/tokens/{theirs.pk}/revoke/").status_code == 404

    _m, maintainer_secret = new_token(maintainer)
    response = api(maintainer_secret).post(f"/api/v1/tokens/{theirs.pk}/revoke/", {"reason": "offboarding"})
    assert response.status_code == 200 and response.json()["active"] is False
    assert response.json()["revoked_by"] == "maintainer"


def test_the_command_prints_a_working_token(admin_unistra, instance_unistra):
    out = io.StringIO()

    call_command("create_api_token", "admin-unistra", "--read-only", "--expires-days", "7", stdout=out)

    secret = out.getvalue().strip()
    token = ApiToken.objects.get(user=admin_unistra)
    assert token.read_only and token.expiry is not None
    assert api(secret).get("/api/v1/instances/").status_code == 200
    assert AuditEvent.objects.filter(action="token.created", actor_label="system: create_api_token").exists()


@pytest.mark.parametrize(
    ("args", "message"), [(["nobody"], "No user"), (["admin-unistra", "--expires-days", "0"], "Between 1 and")]
)
def test_the_command_explains_its_errors(admin_unistra, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_token", *args, stdout=io.StringIO())
    assert not ApiToken.objects.exists()


def test_the_admin_lists_tokens_without_digest_and_revokes_them(client, admin_unistra):
    from tests.conftest import make_user

    superuser = make_user("root")
    superuser.is_staff = superuser.is_superuser = True
    superuser.save()
    token, _secret = new_token(admin_unistra)
    client.force_login(superuser)

    listing = client.get("/admin/core/apitoken/")
    detail = client.get(f"/admin/core/apitoken/{token.pk}/change/")
    response = client.post("/admin/core/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})

    assert listing.status_code == 200 and token.token_key in listing.content.decode()
    assert detail.status_code == 200 and token.digest not in detail.content.decode()
    assert response.status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked_by == superuser
