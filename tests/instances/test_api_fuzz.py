"""Every operation of the API's own OpenAPI schema, fuzzed by schemathesis through the portal's WSGI handler: no
input gives a server error, and every documented answer matches the schema.

Examples are bounded (``FUZZ_EXAMPLES`` per operation) so that the suite stays fast; the data are a maintainer's
view of two organisations with instances, requests, operations and backups.
"""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from core.models import ApiToken
from instances.choices import BackupStatus, BackupTrigger, OperationKind, OperationStatus
from instances.models import Backup, Operation
from instances.workflow import request_update
from tests.conftest import ctx
from tests.instances.test_api_wsgi import keep_the_test_connection  # noqa: F401 - the handler keeps our transaction

FUZZ_EXAMPLES = 12

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", WSGIHandler())


@pytest.fixture
def fleet(maintainer, admin_unistra, admin_unicaen, instance_unistra, instance_unicaen, versions):
    request_update(ctx(admin_unistra), instance_unistra, version=versions["1.2.6"])
    Operation.objects.create(
        kind=OperationKind.DEPLOY,
        instance=instance_unistra,
        status=OperationStatus.SUCCEEDED,
        log=[{"time": timezone.now().isoformat(), "level": "info", "message": "done"}],
    )
    Backup.objects.create(
        instance=instance_unistra,
        job_name="tm-1",
        trigger=BackupTrigger.SCHEDULE,
        status=BackupStatus.SUCCEEDED,
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    return ApiToken.objects.create(user=maintainer, name="fuzz", last_used_at=timezone.now())[1]


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_gives_a_server_error_or_an_answer_outside_the_schema(case, fleet, keep_the_test_connection):  # noqa: F811
    response = case.call(headers={"Authorization": f"Bearer {fleet}"})
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
