"""The CI guard (`manage.py registry_guard` and `GET /api/v1/registry/check/`): does a tag exist in the registry now?
Against a real Distribution registry, open and behind token authentication."""

import io

import pytest
from django.core.management import call_command
from django.urls import resolve

from registry.api import TagCheckView
from registry.models import ImageTag, Registry
from registry.webhooks import RegistryWebhookView
from tests.conftest import make_user
from tests.registry_server import LocalRegistry

pytestmark = pytest.mark.django_db
CHECK = "/api/v1/registry/check/"
USERS = {"ci": "ci-password-0123"}


def guard(reference: str) -> tuple[int, str, str]:
    """Run the command as CI would: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("registry_guard", reference, stdout=out, stderr=err)
    except SystemExit as exit_:
        code = exit_.code
    else:
        code = 0
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def core(server, local, namespace) -> tuple[str, str]:
    """``host/path`` of a repository holding 1.2.4, and the digest of 1.2.4."""
    path = f"{namespace}/core"
    return f"{local.host}/{path}", server.push(path, "1.2.4")


# --- the command ------------------------------------------------------------------------------------------------


def test_a_free_tag_exits_0(core):
    reference, _digest = core

    code, out, err = guard(f"{reference}:1.2.5")

    assert (code, err) == (0, "")
    assert "is free" in out and "sha256:" not in out


def test_an_existing_tag_exits_1_with_its_digest(core):
    reference, digest = core

    code, out, _err = guard(f"{reference}:1.2.4")

    assert code == 1
    assert out.strip() == f"{reference}:1.2.4 exists: {digest}"


def test_the_registry_is_asked_not_the_last_sync(server, core):
    reference, _digest = core
    pushed = server.push(reference.partition("/")[2], "1.2.5")
    assert not ImageTag.objects.exists()  # the portal never synced: only the registry knows of 1.2.5

    code, out, _err = guard(f"{reference}:1.2.5")

    assert (code, pushed in out) == (1, True)


def test_a_repository_never_pushed_is_free(local, namespace):
    code, out, _err = guard(f"{local.host}/{namespace}/brand-new:1.0.0")

    assert code == 0 and "is free" in out


def test_an_unknown_registry_host_exits_2(local):
    code, out, err = guard("registry.example.org/smile/core:1.2.4")

    assert (code, out) == (2, "")
    assert "registry.example.org" in err


@pytest.mark.parametrize(
    "reference",
    [
        "{host}/{ns}/core",  # no tag: the port is no tag
        "{host}/{ns}/core:",  # empty tag
        "{ns}/core",  # no host, no tag
        "{host}/{ns}/core:bad tag",
        "{host}/{ns}/core:-leading-dash",
        "{host}/{ns}/core:" + "x" * 129,
        "{host}/{ns}/Core:1.2.4",  # upper case in a repository path
        "{host}/{ns}//core:1.2.4",
        "{host}/{ns}/core@sha256:" + "a" * 64,  # a digest is not a tag
        "",
    ],
)
def test_a_malformed_reference_exits_2(local, namespace, reference):
    code, out, err = guard(reference.format(host=local.host, ns=namespace))

    assert (code, out) == (2, "")
    assert err.startswith("registry_guard: ")


def test_a_registry_that_is_down_exits_2(down):
    code, out, err = guard(f"{down.host}/smile/core:1.2.4")

    assert (code, out) == (2, "")
    assert "cannot be reached" in err


# --- behind token authentication ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_server():
    with LocalRegistry(token_auth=True, users=USERS) as local:
        yield local


def test_a_registry_behind_token_auth_is_asked_with_the_stored_credentials(
    token_server, fast_registry_calls, namespace
):
    registry = Registry.objects.create(
        name="private", kind="distribution", url=token_server.url, username="ci", secret=USERS["ci"]
    )
    digest = token_server.push(f"{namespace}/core", "1.2.4")
    reference = f"{registry.host}/{namespace}/core"

    assert guard(f"{reference}:1.2.4")[:2] == (1, f"{reference}:1.2.4 exists: {digest}\n")
    assert guard(f"{reference}:1.2.5")[0] == 0

    Registry.objects.filter(pk=registry.pk).update(secret="not-the-password")
    code, _out, err = guard(f"{reference}:1.2.4")
    assert code == 2 and "refused" in err


# --- the API -----------------------------------------------------------------------------------------------------


def test_the_portal_serves_the_registry_endpoints():
    assert resolve("/api/v1/registry/check/", urlconf="portal.urls").func.view_class is TagCheckView
    assert resolve("/registry/hooks/7/", urlconf="portal.urls").func.view_class is RegistryWebhookView


@pytest.fixture
def api(client, registry_urls):
    client.force_login(make_user("ci-bot"))
    return client


def test_the_api_answers_an_existing_tag(api, core):
    reference, digest = core

    response = api.get(CHECK, {"repository": reference, "tag": "1.2.4"})

    assert response.status_code == 200
    assert response.json() == {"repository": reference, "tag": "1.2.4", "exists": True, "digest": digest}


def test_the_api_answers_a_free_tag(api, core):
    reference, _digest = core

    response = api.get(CHECK, {"repository": reference, "tag": "9.9.9"})

    assert response.status_code == 200
    assert (response.json()["exists"], response.json()["digest"]) == (False, None)


@pytest.mark.parametrize(
    ("query", "field"),
    [({"repository": "{ref}"}, "tag"), ({"tag": "1.2.4"}, "repository"), ({"repository": "{ref}", "tag": ""}, "tag")],
)
def test_the_api_needs_a_repository_and_a_tag(api, core, query, field):
    query = {key: value.format(ref=core[0]) for key, value in query.items()}

    response = api.get(CHECK, query)

    assert response.status_code == 400
    assert field in response.json()


def test_the_api_refuses_a_malformed_tag(api, core):
    response = api.get(CHECK, {"repository": core[0], "tag": "bad tag"})

    assert response.status_code == 400
    assert "bad tag" in response.json()["detail"]


def test_the_api_does_not_know_another_registry(api, local):
    response = api.get(CHECK, {"repository": "registry.example.org/smile/core", "tag": "1.2.4"})

    assert response.status_code == 404
    assert "registry.example.org" in response.json()["detail"]


def test_the_api_says_when_the_registry_cannot_answer(api, down):
    response = api.get(CHECK, {"repository": f"{down.host}/smile/core", "tag": "1.2.4"})

    assert response.status_code == 502
    assert "cannot be reached" in response.json()["detail"]


def test_the_api_wants_an_authenticated_caller(client, core, registry_urls):
    response = client.get(CHECK, {"repository": core[0], "tag": "1.2.4"})

    assert response.status_code == 401
    assert "digest" not in response.json()
