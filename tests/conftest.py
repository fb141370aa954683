"""Shared fixtures: organisations, users in their roles, the SMILE catalog and instances."""

from importlib import import_module

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.utils import translation

from core.choices import MAINTAINERS_GROUP, MembershipRole
from core.models import Membership, Organisation
from instances.choices import InstanceStatus
from instances.models import Application, ApplicationVersion, Instance
from tests.engine_fixtures import cluster, controllers, ctx, deployed, queues  # noqa: F401 - fixtures for the whole suite
from tests.kube_fixtures import kube_api_client, kube_emulator  # noqa: F401

PASSWORD = "a-test-password-123"


@pytest.fixture(autouse=True)
def _english_by_default():
    """Every test starts in English: a request in French leaves its language active in the thread."""
    translation.activate("en")
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _fast_tests(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # Throttling and failed-token counters live in the cache: each test starts with none.
    cache.clear()


def make_user(username: str, *, email: str | None = None, maintainer: bool = False):
    user = get_user_model().objects.create_user(
        username=username, email=email if email is not None else f"{username}@example.org", password=PASSWORD
    )
    if maintainer:
        user.groups.add(Group.objects.get(name=MAINTAINERS_GROUP))
    return user


@pytest.fixture
def smile(db):
    # Seeded by a migration, but transactional tests truncate every table, so recreate it when needed.
    images = import_module("instances.migrations.0005_smile_images").SMILE_IMAGES
    application, _created = Application.objects.get_or_create(
        slug="smile",
        defaults={
            "name": "SMILE",
            "kustomize_base": "smile",
            "backup_cronjob": "smile-timemachine",
            "restore_cronjob": "smile-restore",
            "images": images,
        },
    )
    return application


@pytest.fixture
def versions(smile):
    return {v: ApplicationVersion.objects.create(application=smile, version=v) for v in ("1.2.4", "1.2.5", "1.2.6")}


@pytest.fixture
def unistra(db):
    return Organisation.objects.create(
        name="Université de Strasbourg", slug="unistra", contact_emails="team@unistra.fr"
    )


@pytest.fixture
def unicaen(db):
    return Organisation.objects.create(name="Université de Caen", slug="unicaen", contact_emails="team@unicaen.fr")


def make_member(username: str, organisation, role: str):
    user = make_user(username)
    Membership.objects.create(user=user, organisation=organisation, role=role)
    return user


@pytest.fixture
def admin_unistra(unistra):
    return make_member("admin-unistra", unistra, MembershipRole.ADMIN)


@pytest.fixture
def viewer_unistra(unistra):
    return make_member("viewer-unistra", unistra, MembershipRole.VIEWER)


@pytest.fixture
def admin_unicaen(unicaen):
    return make_member("admin-unicaen", unicaen, MembershipRole.ADMIN)


@pytest.fixture
def maintainer(db):
    return make_user("maintainer", maintainer=True)


@pytest.fixture
def maintainer2(db):
    return make_user("maintainer2", maintainer=True)


@pytest.fixture
def instance_unistra(unistra, smile, versions):
    return Instance.objects.create(
        organisation=unistra,
        application=smile,
        slug="smile-unistra",
        hostname="smile-unistra.apps.example.org",
        current_version=versions["1.2.4"],
        status=InstanceStatus.RUNNING,
    )


@pytest.fixture
def instance_unicaen(unicaen, smile, versions):
    return Instance.objects.create(
        organisation=unicaen,
        application=smile,
        slug="smile-unicaen",
        hostname="smile-unicaen.apps.example.org",
        current_version=versions["1.2.5"],
        status=InstanceStatus.RUNNING,
    )


@pytest.fixture(scope="session")
def s3_server():
    """One local S3 server (moto) for the session; tests take buckets of their own (``backup_storage``)."""
    from tests.s3_server import LocalS3

    with LocalS3() as server:
        yield server


@pytest.fixture
def authenticating_s3(monkeypatch):
    """A second local S3 that checks keys: the first request (creating a bucket) is the only anonymous one, and
    every key after it is unknown, as a wrong key would be to a real storage."""
    from tests.s3_server import LocalS3

    monkeypatch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "1")
    with LocalS3() as server:
        yield server


@pytest.fixture
def backup_storage(s3_server, settings):
    """The portal's backup storage pointed at the local S3 server, in a fresh bucket of this test's own."""
    settings.PORTAL_BACKUP_S3_ENDPOINT = s3_server.endpoint
    settings.PORTAL_BACKUP_S3_BUCKET = s3_server.bucket()
    settings.PORTAL_BACKUP_S3_REGION = "us-east-1"
    return s3_server
