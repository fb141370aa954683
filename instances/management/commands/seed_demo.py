"""Demo data for `make run`: two universities, their admins, maintainers, SMILE 1.2.4-1.2.6, one instance each,
and SMILE's images in a local registry (release tags, a branch build the release pattern hides, and one tag pushed
twice, which the first registry sync of the run reports as overwritten)."""

import secrets
import shutil

import psycopg
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from core.choices import MAINTAINERS_GROUP, MembershipRole
from core.models import Membership, Organisation
from instances.catalogue import resolve
from instances.choices import Component, InstanceStatus
from instances.models import Application, ApplicationComponent, ApplicationVersion, Instance
from instances.models.instances import default_hostname
from registry.choices import RegistryKind
from registry.demo import BINARY, DemoRegistryServer
from registry.models import ImageRepository, ImageTag, Registry
from registry.sync import sync_registry

DEMO_PASSWORD = "demo-password"
VERSIONS = ["1.2.4", "1.2.5", "1.2.6"]
# In the sandbox an image tag ending in -broken never becomes ready: upgrading to it shows the automatic rollback.
DEMO_BROKEN_VERSION = "1.2.7-broken"
UNIVERSITIES = [
    ("unistra", "Université de Strasbourg", "smile-unistra", "1.2.4"),
    ("unicaen", "Université de Caen Normandie", "smile-unicaen", "1.2.5"),
]
DEMO_REGISTRY = "demo"
# Component, image placeholder of SMILE's base, repository in the demo registry.
DEMO_COMPONENTS = [
    (Component.CORE, "smile-core", "smile/core"),
    (Component.NGINX, "smile-nginx", "smile/nginx"),
    (Component.BACKUP, "smile-timemachine", "smile/timemachine"),
]
DEMO_BRANCH_BUILD = "feature-exam-mode"
# The demo's release pattern also admits "-broken" tags, so that the sandbox's failed upgrade can be tried.
DEMO_RELEASE_PATTERN = r"^\d+\.\d+\.\d+(-broken)?$"
# Pushed twice: smile-unicaen runs its first build, and the registry page and the instance show the alert.
DEMO_REPUSHED = ("smile/core", "1.2.5")
# The sandbox runs its backup and restore Jobs on this machine (runsandbox --run-jobs): each demo instance's
# database is "sandbox_<namespace>" on the local PostgreSQL, with a few rows to dump and restore.
SANDBOX_POSTGRES = "postgres://postgres@127.0.0.1:5432"
SANDBOX_ROWS = [(1, "Algèbre linéaire", 6), (2, "Thermodynamique", 4), (3, "Histoire de l'art", 3)]


class Command(BaseCommand):
    help = "Create (or refresh) the demo organisations, users, versions and instances. Safe to run twice."

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        smile = Application.objects.get(slug="smile")
        versions = {}
        for number in [*VERSIONS, DEMO_BROKEN_VERSION]:
            versions[number], _ = ApplicationVersion.objects.get_or_create(application=smile, version=number)

        maintainers = Group.objects.get(name=MAINTAINERS_GROUP)
        maintainer = self._user(User, "maintainer", "maintainer@portal.example.org")
        maintainer.groups.add(maintainers)
        self._user(User, "maintainer2", "maintainer2@portal.example.org").groups.add(maintainers)

        for slug, name, instance_slug, version in UNIVERSITIES:
            organisation, _ = Organisation.objects.get_or_create(
                slug=slug, defaults={"name": name, "contact_emails": f"smile-team@{slug}.example.org"}
            )
            admin = self._user(User, f"admin-{slug}", f"admin@{slug}.example.org")
            Membership.objects.update_or_create(
                user=admin, organisation=organisation, defaults={"role": MembershipRole.ADMIN}
            )
            viewer = self._user(User, f"viewer-{slug}", f"viewer@{slug}.example.org")
            Membership.objects.update_or_create(
                user=viewer, organisation=organisation, defaults={"role": MembershipRole.VIEWER}
            )
            Instance.objects.get_or_create(
                slug=instance_slug,
                defaults={
                    "organisation": organisation,
                    "application": smile,
                    "hostname": default_hostname(instance_slug),
                    "current_version": versions[version],
                    "status": InstanceStatus.RUNNING,
                },
            )
        self._seed_registry(smile)
        demo = list(Instance.objects.filter(slug__in=[instance_slug for *_, instance_slug, _ in UNIVERSITIES]))
        self._give_backup_credentials(demo)
        if settings.PORTAL_SANDBOX:
            self._sandbox_databases(demo)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))

    @staticmethod
    def _give_backup_credentials(instances: list[Instance]) -> None:
        """A key pair of each demo instance's own (the sandbox's local storage accepts any pair); kept once set."""
        for instance in instances:
            if not instance.backup_access_key_id:
                instance.backup_access_key_id = f"demo-{instance.slug}"
                instance.backup_secret_access_key = secrets.token_urlsafe(24)
                instance.save(update_fields=["backup_access_key_id", "backup_secret_access_key"])

    def _sandbox_databases(self, instances: list[Instance]) -> None:
        """The database each demo instance's sandbox Jobs dump and restore, with a table and a few rows."""
        try:
            with psycopg.connect(f"{SANDBOX_POSTGRES}/postgres", autocommit=True, connect_timeout=3) as connection:
                for instance in instances:
                    name = f"sandbox_{instance.namespace}"
                    if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                        connection.execute(f'CREATE DATABASE "{name}"')
            for instance in instances:
                url = f"{SANDBOX_POSTGRES}/sandbox_{instance.namespace}"
                with psycopg.connect(url, connect_timeout=3) as connection:
                    connection.execute(
                        "CREATE TABLE IF NOT EXISTS course (id integer PRIMARY KEY, title text, credits integer)"
                    )
                    connection.cursor().executemany(
                        "INSERT INTO course VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING", SANDBOX_ROWS
                    )
        except psycopg.Error as error:
            self.stdout.write(self.style.WARNING(
                f"PostgreSQL at {SANDBOX_POSTGRES} is not available ({error.__class__.__name__}): the sandbox's backup "
                "Jobs will fail until it is (make run's backups dump sandbox_<namespace> databases there)."
            ))  # fmt: skip

    def _seed_registry(self, smile: Application) -> None:
        """Push SMILE's demo images (what is there already stays), make the registry SMILE's, sync it and pin
        the instances to the digests; then push one release tag a second time."""
        if shutil.which(BINARY) is None:
            self.stdout.write(self.style.WARNING(f"{BINARY} is missing: the demo has no registry (make registry)."))
            return
        with DemoRegistryServer(settings.PORTAL_DEMO_REGISTRY_DIR, settings.PORTAL_DEMO_REGISTRY_PORT) as server:
            for _component, _placeholder, path in DEMO_COMPONENTS:
                for tag in [*VERSIONS, DEMO_BROKEN_VERSION, DEMO_BRANCH_BUILD]:
                    if server.digest_of(path, tag) is None:
                        server.push_image(path, tag, f"{path}:{tag}\n".encode())
            registry, _ = Registry.objects.update_or_create(
                name=DEMO_REGISTRY, defaults={"kind": RegistryKind.DISTRIBUTION, "url": server.url}
            )
            for component, placeholder, path in DEMO_COMPONENTS:
                repository, _ = ImageRepository.objects.get_or_create(registry=registry, path=path)
                ApplicationComponent.objects.update_or_create(
                    application=smile,
                    component=component,
                    defaults={"placeholder": placeholder, "repository": repository},
                )
            # Distribution has no scanner: its images are "not scanned", which the demo allows.
            smile.release_pattern, smile.allow_not_scanned = DEMO_RELEASE_PATTERN, True
            smile.save(update_fields=["release_pattern", "allow_not_scanned"])
            for result in sync_registry(registry):
                self.stdout.write(f"Registry sync: {result}")
            for instance in Instance.objects.filter(application=smile, images={}, current_version__isnull=False):
                instance.images, _blockers = resolve(smile, instance.current_version)
                instance.save(update_fields=["images"])
            path, tag = DEMO_REPUSHED
            known = ImageTag.objects.filter(repository__registry=registry, repository__path=path, tag=tag).first()
            if known is not None and known.digest == known.first_digest == server.digest_of(path, tag):
                server.push_image(path, tag, f"{path}:{tag} rebuilt\n".encode())

    def _user(self, User, username: str, email: str):
        user, created = User.objects.get_or_create(username=username, defaults={"email": email})
        if created or not user.has_usable_password():
            user.set_password(DEMO_PASSWORD)
            user.save()
        return user
