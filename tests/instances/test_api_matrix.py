"""Every endpoint for every kind of caller, on one organisation's objects: who reads, who acts, who is told the object
does not exist (404), who is refused (403), who is not authenticated (401).

The callers: a maintainer, the organisation's functional admin and viewer, another organisation's functional admin,
an anonymous client, and the functional admin's read-only, expired and revoked tokens.
"""

import datetime
import json

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import ApiToken
from instances.choices import OperationKind, OperationStatus
from instances.models import ChangeRequest, Operation
from instances.workflow import request_update
from tests.conftest import ctx

ROLES = ["maintainer", "admin", "viewer", "other", "anonymous", "read_only", "expired", "revoked"]
NOT_AUTHENTICATED = {"anonymous": 401, "expired": 401, "revoked": 401}
READ = {"maintainer": 200, "admin": 200, "viewer": 200, "other": 404, "read_only": 200, **NOT_AUTHENTICATED}
LIST = {"maintainer": 200, "admin": 200, "viewer": 200, "other": 200, "read_only": 200, **NOT_AUTHENTICATED}
REVIEW = {"maintainer": 200, "admin": 403, "viewer": 403, "other": 404, "read_only": 403, **NOT_AUTHENTICATED}
CANCEL = {"maintainer": 200, "admin": 200, "viewer": 403, "other": 404, "read_only": 403, **NOT_AUTHENTICATED}
# Filing refers to the instance in the body: another organisation's is "not found" on that field (400).
FILE = {"maintainer": 201, "admin": 201, "viewer": 403, "other": 400, "read_only": 403, **NOT_AUTHENTICATED}
# An import by another organisation is answered line by line ("unknown instance"), as for a missing instance.
IMPORT = {"maintainer": 200, "admin": 200, "viewer": 403, "other": 200, "read_only": 403, **NOT_AUTHENTICATED}
CHECK = dict.fromkeys(ROLES, 404) | NOT_AUTHENTICATED  # a registry the portal does not know, for everyone

ENDPOINTS = [
    ("GET", "/api/v1/", None, LIST),
    ("GET", "/api/v1/organisations/unistra/", None, READ),
    ("GET", "/api/v1/instances/smile-unistra/", None, READ),
    ("GET", "/api/v1/instances/smile-unistra/rollout/", None, READ),
    ("GET", "/api/v1/instances/smile-unistra/backups/", None, READ),
    ("GET", "/api/v1/requests/{request}/", None, READ),
    ("GET", "/api/v1/operations/{operation}/", None, READ),
    ("GET", "/api/v1/applications/smile/", None, LIST),
    ("GET", "/api/v1/instances/", None, LIST),
    ("GET", "/api/v1/requests/", None, LIST),
    ("GET", "/api/v1/operations/", None, LIST),
    ("GET", "/api/v1/memberships/", None, LIST),
    ("GET", "/api/v1/audit/", None, LIST),
    ("GET", "/api/v1/tokens/", None, LIST),
    ("GET", "/api/v1/registry/check/?repository=registry.example.org/smile/core&tag=1.0.0", None, CHECK),
    ("GET", "/api/v1/instructions/export/", None, LIST),
    ("POST", "/api/v1/instructions/import/?dry_run=true", {"text": "U|smile-unistra|1.2.6|01/01/2030-12:00"}, IMPORT),
    ("POST", "/api/v1/requests/", {"kind": "backup", "instance": "smile-unistra"}, FILE),
    ("POST", "/api/v1/requests/{request}/approve/", {"reason": "ok"}, REVIEW),
    ("POST", "/api/v1/requests/{request}/reject/", {"reason": "not now"}, REVIEW),
    ("POST", "/api/v1/requests/{request}/cancel/", {"reason": "changed my mind"}, CANCEL),
]


def token(user, **fields) -> str:
    return ApiToken.objects.create(user=user, name="matrix", last_used_at=timezone.now(), **fields)[1]


@pytest.fixture
def callers(maintainer, admin_unistra, viewer_unistra, admin_unicaen) -> dict[str, str | None]:
    expired = token(admin_unistra, expiry=datetime.timedelta(days=1))
    ApiToken.objects.filter(token_key=expired[:15]).update(expiry=timezone.now() - datetime.timedelta(seconds=1))
    revoked = token(admin_unistra)
    ApiToken.objects.filter(token_key=revoked[:15]).update(revoked_at=timezone.now())
    return {
        "maintainer": token(maintainer),
        "admin": token(admin_unistra),
        "viewer": token(viewer_unistra),
        "other": token(admin_unicaen),
        "anonymous": None,
        "read_only": token(admin_unistra, read_only=True),
        "expired": expired,
        "revoked": revoked,
    }


@pytest.fixture
def objects(admin_unistra, instance_unistra, instance_unicaen, versions) -> dict[str, int]:
    """One organisation's request (filed by its functional admin) and operation."""
    change = request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"])
    operation = Operation.objects.create(
        kind=OperationKind.DEPLOY, instance=instance_unistra, status=OperationStatus.SUCCEEDED
    )
    return {"request": change.pk, "operation": operation.pk}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "url", "body", "expected"), ENDPOINTS)
def test_every_endpoint_answers_every_caller_as_its_role_allows(callers, objects, role, method, url, body, expected):
    client = APIClient()
    if callers[role] is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {callers[role]}")
    requests = ChangeRequest.objects.values_list("pk", "status").order_by("pk")
    before = list(requests)

    response = client.generic(
        method, url.format(**objects), json.dumps(body) if body else "", content_type="application/json"
    )

    assert response.status_code == expected[role], (role, method, url, response.content[:300])
    assert response["Content-Type"].startswith(
        "text/plain" if url.endswith("export/") and expected[role] == 200 else "application/json"
    )
    if response.status_code >= 400:
        assert list(requests) == before, "an error changed data"
