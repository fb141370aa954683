"""`make run` seeds the demo: two universities, their admins, a maintainer, SMILE 1.2.4-1.2.6, one instance each,
and SMILE's images in a real local registry."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from core.models import Organisation
from core.models.organisations import can_request_for, is_maintainer
from instances.choices import InstanceStatus
from instances.management.commands.seed_demo import DEMO_BRANCH_BUILD, DEMO_REPUSHED
from instances.models import ApplicationVersion, Instance
from registry.models import ImageTag, TagOverwrite
from tests.processes import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def demo_registry(settings, tmp_path):
    """A registry directory and port of the test's own (`make run` may be serving the default ones)."""
    settings.PORTAL_DEMO_REGISTRY_DIR = tmp_path / "registry"
    settings.PORTAL_DEMO_REGISTRY_PORT = free_port()


def test_seed_creates_the_demo_and_is_idempotent():
    call_command("seed_demo")
    call_command("seed_demo")
    users = get_user_model().objects
    assert set(Organisation.objects.values_list("slug", flat=True)) == {"unistra", "unicaen"}
    demo_versions = ["1.2.4", "1.2.5", "1.2.6", "1.2.7-broken"]
    assert sorted(ApplicationVersion.objects.values_list("version", flat=True)) == demo_versions
    instances = Instance.objects.select_related("organisation")
    assert {(i.organisation.slug, i.status) for i in instances} == {
        ("unistra", InstanceStatus.RUNNING),
        ("unicaen", InstanceStatus.RUNNING),
    }
    maintainer = users.get(username="maintainer")
    assert is_maintainer(maintainer)
    assert maintainer.check_password("demo-password")
    admin = users.get(username="admin-unistra")
    assert not is_maintainer(admin)
    assert can_request_for(admin, Organisation.objects.get(slug="unistra"))
    assert not can_request_for(admin, Organisation.objects.get(slug="unicaen"))
    assert not can_request_for(users.get(username="viewer-unistra"), Organisation.objects.get(slug="unistra"))


def test_the_demo_registry_holds_releases_a_hidden_branch_build_and_one_overwritten_tag():
    call_command("seed_demo")

    versions = ApplicationVersion.objects.filter(application__slug="smile", is_available=True)
    assert {v.version: v.source for v in versions} == {
        "1.2.4": "registry", "1.2.5": "registry", "1.2.6": "registry", "1.2.7-broken": "registry"
    }  # fmt: skip
    assert all(v.deployable and v.images["smile-core"]["digest"].startswith("sha256:") for v in versions)
    assert ImageTag.objects.filter(tag=DEMO_BRANCH_BUILD).count() == 3  # in the registry, not a version
    unicaen = Instance.objects.get(slug="smile-unicaen")
    first_build = unicaen.images["smile-core"]["digest"]
    assert first_build == ImageTag.objects.get(repository__path=DEMO_REPUSHED[0], tag=DEMO_REPUSHED[1]).digest
    assert not TagOverwrite.objects.exists()

    call_command("seed_demo")  # the next `make run`: its sync sees the tag pushed again

    [alert] = TagOverwrite.objects.all()
    assert (alert.tag.tag, alert.old_digest) == ("1.2.5", first_build)
    assert Instance.objects.get(slug="smile-unicaen").images["smile-core"]["digest"] == first_build
    call_command("seed_demo")
    assert TagOverwrite.objects.count() == 1  # pushed twice once, not at every run
