"""Twenty maintainers' approvals at the same moment, on the embedded SQLite and on PostgreSQL: no server error."""

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.processes import Portal, drop_postgres, fresh_postgres

pytestmark = pytest.mark.faults
COUNT = 20

SETUP = f"""
from django.contrib.auth import get_user_model
from core.models import ApiToken
from core.audit import AuditContext
from instances import workflow
from instances.models import ApplicationVersion, Instance
from core.models import Organisation
smile_version = ApplicationVersion.objects.get(version="1.2.6")
unistra = Organisation.objects.get(slug="unistra")
template = Instance.objects.get(slug="smile-unistra")
admin = get_user_model().objects.get(username="admin-unistra")
ids = []
for i in range({COUNT}):
    instance = Instance.objects.create(organisation=unistra, application=template.application, slug=f"parallel-{{i}}",
        hostname=f"parallel-{{i}}.test", current_version=template.current_version, status="running")
    ids.append(workflow.request_update(AuditContext(user=admin, label="admin-unistra"), instance,
        version=smile_version).pk)
token = ApiToken.objects.create(user=get_user_model().objects.get(username="maintainer"), name="parallel")[1]
print(token, *ids)
"""


def approve_all(url: str, token: str, ids: list[str]) -> list[int]:
    def approve(pk: str) -> int:
        request = urllib.request.Request(
            f"{url}/api/v1/requests/{pk}/approve/", data=json.dumps({"reason": "parallel"}).encode(), method="POST",
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    with ThreadPoolExecutor(COUNT) as pool:
        return list(pool.map(approve, ids))


def run_parallel_approvals(portal: Portal) -> None:
    portal.manage("migrate", "--noinput")
    portal.manage("seed_demo")
    token, *ids = portal.manage("shell", "-v", "0", "-c", SETUP).strip().splitlines()[-1].split()
    url = portal.serve()
    statuses = approve_all(url, token, ids)
    assert statuses == [200] * COUNT, statuses
    check = (
        "from instances.models import ChangeRequest as C; from core.models import AuditEvent as A; "
        "print(C.objects.filter(reviewer__isnull=False).count(), "
        "A.objects.filter(action='request.approved', reason='parallel').count())"
    )
    assert portal.manage("shell", "-v", "0", "-c", check).split() == [str(COUNT), str(COUNT)]


@pytest.fixture(params=["sqlite", "postgres"])
def portal(request, tmp_path):
    """The portal on each database it supports."""
    if request.param == "sqlite":
        portal = Portal(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    else:
        portal = Portal(fresh_postgres("saas_portal_faults_approvals"))
    yield portal
    portal.stop()
    if request.param == "postgres":
        drop_postgres("saas_portal_faults_approvals")


def test_parallel_approvals(portal):
    run_parallel_approvals(portal)
