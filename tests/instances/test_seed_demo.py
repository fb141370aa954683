"""`make run` seeds the demo: two universities, their admins, a maintainer, SMILE 1.2.4-1.2.6, one instance each."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from core.models import Organisation
from core.models.organisations import can_request_for, is_maintainer
from instances.choices import InstanceStatus
from instances.models import ApplicationVersion, Instance

pytestmark = pytest.mark.django_db


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
