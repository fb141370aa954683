"""The Distribution client against a real registry: Debian's ``docker-registry`` 2.8 (see tests/registry_server.py),
one open server and one behind token authentication for the whole module. No database."""

import itertools

import pytest

from registry.choices import ScanStatus
from registry.clients import distribution
from registry.clients.distribution import DistributionClient
from registry.clients.errors import RegistryUnauthorised, RegistryUnreachable, RepositoryNotFound
from tests.processes import free_port
from tests.registry_server import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    LocalRegistry,
    TokenIssuer,
)

USERS = {"ci": "secret"}
_numbers = itertools.count()


@pytest.fixture(scope="module")
def registry():
    with LocalRegistry() as server:
        yield server


@pytest.fixture(scope="module")
def token_registry():
    with LocalRegistry(token_auth=True, users=USERS) as server:
        yield server


@pytest.fixture
def repository() -> str:
    """A repository of the test's own: the tests share the module's registry, not their tags."""
    return f"portal/app{next(_numbers)}"


def client_for(url: str, **options) -> DistributionClient:
    # No retries: a real local registry has no reason to answer 5xx, and a retry would blur the call counts.
    return DistributionClient(url, timeout=(2, 10), retries=0, **options)


# --- listing ---------------------------------------------------------------------------------------------------


def test_tags_come_whole_in_one_answer_since_distribution_2_8_ignores_n(registry, repository, monkeypatch):
    monkeypatch.setattr(distribution, "PAGE_SIZE", 2)
    pushed = [f"1.0.{patch}" for patch in range(5)]
    for tag in pushed:
        registry.push(repository, tag, payload=tag.encode())
    client = client_for(registry.url)

    names = client.tag_names(repository)

    # In filesystem order, not sorted; and all five in one answer without a Link header: tags/list pagination came
    # with Distribution 3. A registry that pages would take 3 calls here (the Link path is the next test's).
    assert sorted(names) == pushed
    assert client.calls == 1


def test_link_pagination_is_followed_to_the_last_page():
    # Distribution 2.8 pages only its catalog: a registry of the test's own, so that it holds exactly five.
    with LocalRegistry() as server:
        pushed = [f"paged/app{number}" for number in range(5)]
        for name in pushed:
            server.push(name, "1.0")
        client = client_for(server.url)

        pages = [
            client.json(page)["repositories"] for page in client.pages("v2/_catalog", repository="", params={"n": 2})
        ]

    assert pages == [pushed[0:2], pushed[2:4], pushed[4:]]
    assert client.calls == 3


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST])
def test_head_answers_the_digest_the_push_got(registry, repository, media_type):
    if media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST):
        image_type = OCI_MANIFEST if media_type == OCI_INDEX else DOCKER_MANIFEST
        image = registry.push(repository, "amd64", media_type=image_type)
        pushed = registry.push(repository, "latest", media_type=media_type, references=[image])
        assert pushed != image
    else:
        pushed = registry.push(repository, "latest", media_type=media_type)
    client = client_for(registry.url)

    assert client.digest(repository, "latest") == pushed
    assert client.calls == 1  # Docker-Content-Digest came with the HEAD: no GET of the manifest


def test_tags_pairs_each_tag_with_its_digest(registry, repository):
    pushed = {tag: registry.push(repository, tag, payload=tag.encode()) for tag in ("1.0", "1.1", "2.0")}

    tags = client_for(registry.url).tags(repository)

    assert {remote.tag: remote.digest for remote in tags} == pushed
    assert {remote.scan.status for remote in tags} == {ScanStatus.NOT_SCANNED}


def test_an_unknown_tag_is_none(registry, repository):
    registry.push(repository, "1.0")
    client = client_for(registry.url)

    assert client.digest(repository, "2.0") is None
    assert client.calls == 2  # the HEAD's 404, then the tag list that tells a missing tag from a missing repository


def test_an_unknown_repository_raises(registry):
    client = client_for(registry.url)

    with pytest.raises(RepositoryNotFound):
        client.digest("portal/never-pushed", "1.0")
    with pytest.raises(RepositoryNotFound):
        client.tags("portal/never-pushed")


def test_a_repushed_tag_has_a_new_digest(registry, repository):
    first = registry.push(repository, "1.0", payload=b"first build")
    second = registry.push(repository, "1.0", payload=b"second build")
    client = client_for(registry.url)

    assert first != second
    assert client.digest(repository, "1.0") == second
    assert client.tag_names(repository) == ["1.0"]


def test_a_repository_emptied_by_a_delete_has_no_tags(registry, repository):
    digest = registry.push(repository, "only")
    if not registry.delete(repository, digest):
        pytest.skip("this registry does not allow deleting manifests")
    client = client_for(registry.url)

    # Distribution untags what pointed to the manifest and then answers "tags": null; the repository still exists.
    assert client.tag_names(repository) == []
    assert client.tags(repository) == []
    assert client.digest(repository, "only") is None


def test_a_closed_port_is_unreachable():
    waits: list[float] = []
    client = DistributionClient(f"http://127.0.0.1:{free_port()}", timeout=(2, 10), retries=3, sleep=waits.append)

    with pytest.raises(RegistryUnreachable):
        client.digest("portal/app", "1.0")
    assert (client.calls, waits) == (1, [])  # a refused connection fails at once, without retries


# --- the token challenge ---------------------------------------------------------------------------------------


def test_the_token_challenge_is_answered_and_the_token_reused(token_registry, repository):
    pushed = token_registry.push(repository, "1.0")
    issued = token_registry.token_server.requests
    client = client_for(token_registry.url, username="ci", secret=USERS["ci"])

    assert client.digest(repository, "1.0") == pushed
    assert client.calls == 3  # HEAD answered 401 with the challenge, the token, HEAD again with the token
    assert client.digest(repository, "1.0") == pushed
    assert [remote.digest for remote in client.tags(repository)] == [pushed]
    assert client.calls == 6  # then one call each: HEAD, tags/list, HEAD
    assert token_registry.token_server.requests == issued + 1


@pytest.mark.parametrize(
    ("username", "secret"), [("ci", "not-the-secret"), ("intruder", USERS["ci"]), ("", "")], ids=str
)
def test_wrong_credentials_are_refused_by_the_token_server(token_registry, repository, username, secret):
    token_registry.push(repository, "1.0")
    asked = token_registry.token_server.requests
    client = client_for(token_registry.url, username=username, secret=secret)

    with pytest.raises(RegistryUnauthorised):
        client.digest(repository, "1.0")
    assert client.calls == 2  # the challenged HEAD and the refused token request; no loop
    assert token_registry.token_server.requests == asked + 1


def test_a_bearer_secret_is_sent_as_is_and_verified_by_the_registry(token_registry, repository):
    pushed = token_registry.push(repository, "1.0")
    access = [{"type": "repository", "name": repository, "actions": ["pull"]}]
    genuine = token_registry.token_server.issuer.token("ci", access)
    # Same issuer name and service, another key: only the signature and the rootcertbundle tell them apart.
    forged = TokenIssuer(token_registry.issuer_name, token_registry.service).token("ci", access)

    accepted = client_for(token_registry.url, secret=genuine)
    assert accepted.digest(repository, "1.0") == pushed
    assert accepted.calls == 1
    refused = client_for(token_registry.url, secret=forged)
    with pytest.raises(RegistryUnauthorised):
        refused.digest(repository, "1.0")  # challenged, and the token server refuses a request with no credentials
