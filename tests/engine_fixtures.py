"""Engine fixtures: an emulated cluster with simulated controllers, real Redis queues and a burst worker."""

import pytest
from rq import SimpleWorker

from core.audit import AuditContext
from core.jobs import get_queue
from instances import workflow
from instances.choices import RequestStatus
from instances.engine import dispatcher
from instances.models import Cluster, Operation
from kubesim import SimulatedControllers
from tests.backup_fixtures import BackupJobs, give_backup_credentials


@pytest.fixture
def controllers(kube_emulator):
    """Controllers that finish rollouts and Jobs at once; a `-broken` image fails after half a second. Backup
    and restore Jobs act on the storage as their scripts do (``BackupJobs``, as ``controllers.job_runner``)."""
    with SimulatedControllers(
        kube_emulator,
        rollout_seconds=0,
        job_seconds=0,
        progress_deadline_seconds=0.5,
        tick=0.05,
        job_runner=BackupJobs(kube_emulator),
    ) as simulated:
        yield simulated


@pytest.fixture
def cluster(transactional_db, kube_emulator, controllers, backup_storage):
    return Cluster.objects.create(name="emulated", kubeconfig=kube_emulator.kubeconfig(), is_default=True)


@pytest.fixture
def queues():
    """Empty RQ queues on the tests' own Redis database."""
    connection = get_queue("default").connection
    connection.flushdb()
    yield
    connection.flushdb()


def ctx(user) -> AuditContext:
    return AuditContext(user=user, label=user.get_username(), request_id="test", ip_address="127.0.0.1")


def run_worker(*names: str) -> None:
    """Run every queued job with a real RQ worker, in-process (a forking worker would share our connection)."""
    queues = [get_queue(name) for name in (names or ("default", "operations", "sync", "storage"))]
    worker = SimpleWorker(queues, connection=queues[0].connection)
    worker.work(burst=True, with_scheduler=False)


def core_image(emulator, namespace):
    deployment = emulator.get_object("apps/v1", "Deployment", namespace, "smile-core")
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def create_and_run(admin, maintainer, organisation, smile, version, slug="smile-new", credentials=True):
    """Create an instance through an approved request; with ``credentials`` it gets a storage key of its own
    (its backups then upload and verify)."""
    request = workflow.request_create(ctx(admin), organisation=organisation, application=smile, slug=slug,
                                      version=version)  # fmt: skip
    request.approve(ctx(maintainer))
    dispatcher.dispatch()
    request.refresh_from_db()
    if credentials and request.instance_id is not None:
        # Before the deploy, as a maintainer would: the deploy writes them to the instance's Secret.
        give_backup_credentials(request.instance)
    run_worker()
    request.refresh_from_db()
    return request


@pytest.fixture
def deployed(cluster, queues, admin_unistra, maintainer, unistra, smile, versions):
    """smile-new deployed at 1.2.4 through a create request."""
    request = create_and_run(admin_unistra, maintainer, unistra, smile, versions["1.2.4"])
    assert request.status == RequestStatus.SUCCEEDED, request.result
    return request.instance


def approved_upgrade(admin, maintainer, instance, version):
    """An upgrade requested and approved, its operation queued at once (no dispatcher tick, no worker yet)."""
    request = workflow.request_update(ctx(admin), instance, version=version)
    workflow.approve(ctx(maintainer), request)
    return request, Operation.objects.get(request=request)


def upgrade(admin, maintainer, instance, version, **kwargs):
    request = workflow.request_update(ctx(admin), instance, version=version, **kwargs)
    request.approve(ctx(maintainer))
    dispatcher.dispatch()
    run_worker()
    request.refresh_from_db()
    return request
