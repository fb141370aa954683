"""Demo data for `make run`: two universities, their admins, maintainers, SMILE 1.2.4-1.2.6, one instance each."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from core.choices import MAINTAINERS_GROUP, MembershipRole
from core.models import Membership, Organisation
from instances.choices import InstanceStatus
from instances.models import Application, ApplicationVersion, Instance
from instances.models.instances import default_hostname

DEMO_PASSWORD = "demo-password"
VERSIONS = ["1.2.4", "1.2.5", "1.2.6"]
# In the sandbox an image tag ending in -broken never becomes ready: upgrading to it shows the automatic rollback.
DEMO_BROKEN_VERSION = "1.2.7-broken"
UNIVERSITIES = [
    ("unistra", "Université de Strasbourg", "smile-unistra", "1.2.4"),
    ("unicaen", "Université de Caen Normandie", "smile-unicaen", "1.2.5"),
]


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
        self.stdout.write(self.style.SUCCESS("Demo data ready."))

    def _user(self, User, username: str, email: str):
        user, created = User.objects.get_or_create(username=username, defaults={"email": email})
        if created or not user.has_usable_password():
            user.set_password(DEMO_PASSWORD)
            user.save()
        return user
