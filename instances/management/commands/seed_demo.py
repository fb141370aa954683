"""Demo data for `make run`: two universities, their admins, maintainers, SMILE 1.2.4-1.2.6, one instance each,
and SMILE's images in a local registry (release tags, a branch build the release pattern hides, and one tag pushed
twice, which the first registry sync of the run reports as overwritten)."""

import shutil

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
        self.stdout.write(self.style.SUCCESS("Demo data ready."))

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
