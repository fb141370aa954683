"""Engine fixtures: an emulated cluster with simulated controllers, real Redis queues and a burst worker."""

import pytest
from rq import SimpleWorker

from core.jobs import get_queue
from instances.models import Cluster
from kubesim import SimulatedControllers


@pytest.fixture
def controllers(kube_emulator):
    """Controllers that finish rollouts and Jobs at once; a `-broken` image fails after half a second."""
    with SimulatedControllers(
        kube_emulator, rollout_seconds=0, job_seconds=0, progress_deadline_seconds=0.5, tick=0.05
    ) as simulated:
        yield simulated


@pytest.fixture
def cluster(transactional_db, kube_emulator, controllers):
    return Cluster.objects.create(name="emulated", kubeconfig=kube_emulator.kubeconfig(), is_default=True)


@pytest.fixture
def queues():
    """Empty RQ queues on the tests' own Redis database."""
    connection = get_queue("default").connection
    connection.flushdb()
    yield
    connection.flushdb()


def run_worker(*names: str) -> int:
    """Run every queued job with a real RQ worker, in-process (a forking worker would share our connection)."""
    queues = [get_queue(name) for name in (names or ("default", "operations", "sync"))]
    worker = SimpleWorker(queues, connection=queues[0].connection)
    worker.work(burst=True, with_scheduler=False)
    return sum(1 for _ in queues)
