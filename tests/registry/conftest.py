"""Fixtures of the registry tests that need the database: a real Distribution registry per module, the portal's
rows pointing at it, and SMILE's components mapped onto its repositories."""

import itertools

import pytest

from instances.choices import Component
from instances.models import ApplicationComponent, ApplicationVersion
from registry.choices import ScanStatus
from registry.models import ImageRepository, ImageTag, Registry
from registry.sync import sync_registry
from tests.processes import free_port
from tests.registry_server import LocalRegistry

_namespaces = itertools.count()


@pytest.fixture(scope="module")
def server():
    """A real registry for the module; each test pushes under a namespace of its own (see ``namespace``)."""
    with LocalRegistry() as local:
        yield local


@pytest.fixture
def namespace() -> str:
    """A repository namespace of the test's own, so that tests sharing the module's registry share no tags."""
    return f"smile{next(_namespaces)}"


@pytest.fixture
def fast_registry_calls(settings):
    # A local registry has no reason to fail; a retry would only slow a failing test down.
    settings.PORTAL_REGISTRY_RETRIES = 0
    settings.PORTAL_REGISTRY_CONNECT_TIMEOUT = 2
    settings.PORTAL_REGISTRY_READ_TIMEOUT = 10


@pytest.fixture
def local(db, server, fast_registry_calls) -> Registry:
    """The portal's row for the module's registry."""
    return Registry.objects.create(name="local", kind="distribution", url=server.url)


@pytest.fixture
def down(db, fast_registry_calls) -> Registry:
    """A registry whose port nothing listens on."""
    return Registry.objects.create(name="down", kind="distribution", url=f"http://127.0.0.1:{free_port()}")


def repository(registry: Registry, path: str) -> ImageRepository:
    return ImageRepository.objects.create(registry=registry, path=path)


def map_components(application, registry: Registry, namespace: str) -> dict[str, ImageRepository]:
    """SMILE's core and nginx images come from ``<namespace>/core`` and ``<namespace>/nginx`` of ``registry``."""
    repositories = {}
    for component in (Component.CORE, Component.NGINX):
        repositories[component] = repository(registry, f"{namespace}/{component}")
        ApplicationComponent.objects.create(
            application=application,
            component=component,
            placeholder=f"smile-{component}",
            repository=repositories[component],
        )
    return repositories


@pytest.fixture
def registry_urls(settings):
    """Serve the registry app's endpoints alone (``test_guard.test_the_portal_serves_the_registry_endpoints``
    checks that the portal routes the same paths to them)."""
    settings.ROOT_URLCONF = "tests.registry.urls"


RELEASES = ("1.2.4", "1.2.5", "1.2.6")


@pytest.fixture
def released(server, local, smile, namespace, instance_unistra):
    """SMILE's core and nginx at 1.2.4 to 1.2.6 in the registry, synced; unscanned images allowed (Distribution
    has no scanner). Returns the repositories and the digests the pushes got."""
    smile.allow_not_scanned = True
    smile.save()
    repositories = map_components(smile, local, namespace)
    digests = {
        (component, tag): server.push(repo.path, tag, payload=f"{component}:{tag}".encode())
        for component, repo in repositories.items()
        for tag in RELEASES
    }
    sync_registry(local)
    return repositories, digests


def version(smile, name: str) -> ApplicationVersion:
    return ApplicationVersion.objects.get(application=smile, version=name)


def fail_scan(repo, tag: str, cve: str = "CVE-2024-6387") -> None:
    ImageTag.objects.filter(repository=repo, tag=tag).update(
        scan_status=ScanStatus.FAILED,
        vulnerability_counts={"critical": 1},
        vulnerabilities=[{"id": cve, "severity": "critical"}],
    )
