"""Benchmark: upgrade a fleet of N instances against the emulated cluster with the real RQ worker.

    .venv/bin/python bench/fleet_upgrade.py [--instances 100]

Uses its own PostgreSQL database (saas_portal_bench, recreated) and Redis database 14. Prints instances per
second, Kubernetes API requests per instance, and how the worker's time splits between Kustomize, the cluster
(apply, prune, waits) and the database. A script, not a test: its figures depend on the machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/saas_portal_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")

TIMES: dict[str, float] = defaultdict(float)
DEPTH: dict[str, int] = defaultdict(int)


def timed(bucket: str, function):
    """Add the call's duration to ``bucket``; nested calls into the same bucket are counted once."""

    def wrapper(*args, **kwargs):
        DEPTH[bucket] += 1
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            DEPTH[bucket] -= 1
            if DEPTH[bucket] == 0:
                TIMES[bucket] += time.perf_counter() - start

    return wrapper


@contextmanager
def database_timer():
    from django.db import connection

    def record(execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            TIMES["database"] += time.perf_counter() - start

    with connection.execute_wrapper(record):
        yield


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own local emulator
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def prepare_database() -> None:
    import psycopg

    name = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100)
    args = parser.parse_args()
    prepare_database()
    logging.disable(logging.INFO)  # the worker logs every object it applies

    from kubernetes.client import rest
    from rq import SimpleWorker

    from core.audit import AuditContext
    from core.jobs import get_queue
    from core.models import Organisation
    from instances.choices import InstanceStatus, RequestStatus
    from instances.engine import dispatcher
    from instances.kube import client as kube_client
    from instances.kube import kustomize
    from instances.models import Application, ApplicationVersion, ChangeRequest, Cluster, Instance
    from kubesim import kubeconfig_for

    # Instrument the three places the worker spends its time.
    kustomize.Kustomize.build = timed("kustomize", kustomize.Kustomize.build)
    for name in ("apply", "prune", "list", "watch", "get", "create_if_absent", "create_job_from_cronjob"):
        setattr(kube_client.ClusterClient, name, timed("cluster", getattr(kube_client.ClusterClient, name)))

    # Count every HTTP request the portal makes to the cluster, from the portal's side.
    calls = {"n": 0}
    original_request = rest.RESTClientObject.request

    def counting_request(self, *a, **k):
        calls["n"] += 1
        return original_request(self, *a, **k)

    rest.RESTClientObject.request = counting_request

    # The cluster runs in its own process, as a real one would: the worker's timings are not the emulator's.
    port = free_port()
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "kubesim", "--port", str(port), "--rollout-seconds", "0", "--job-seconds", "0",
         "--tick", "0.05", "--cron-interval", "100000"],
        cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_for(url + "/version")
    queue = get_queue("operations")
    queue.connection.flushdb()
    smile = Application.objects.get(slug="smile")
    old, new = (ApplicationVersion.objects.create(application=smile, version=v) for v in ("1.2.4", "1.2.6"))
    cluster = Cluster.objects.create(name="bench", kubeconfig=kubeconfig_for(url), is_default=True)
    organisation = Organisation.objects.create(name="Bench University", slug="bench")
    system = AuditContext.system("benchmark")
    instances = Instance.objects.bulk_create(
        Instance(
            organisation=organisation,
            application=smile,
            slug=f"bench-{i:04d}",
            hostname=f"bench-{i:04d}.test",
            cluster=cluster,
            current_version=old,
            status=InstanceStatus.PROVISIONING,
        )
        for i in range(args.instances)
    )
    worker = SimpleWorker([get_queue("default"), queue], connection=queue.connection)

    # First deployment (not measured): every instance exists on the cluster at the old version.
    from instances.sandbox import restore_sandbox

    restore_sandbox(cluster)
    worker.work(burst=True)
    assert Instance.objects.filter(status=InstanceStatus.RUNNING).count() == args.instances

    from instances import workflow

    for instance in instances:
        request = workflow.request_update(system, Instance.objects.get(pk=instance.pk), version=new)
        request._transition(system, RequestStatus.APPROVED)
    calls["n"] = 0
    TIMES.clear()
    start = time.perf_counter()
    with database_timer():
        dispatcher.dispatch()
        worker.work(burst=True)
    elapsed = time.perf_counter() - start
    done = ChangeRequest.objects.filter(status=RequestStatus.SUCCEEDED).count()
    requests = calls["n"]
    sandbox.terminate()
    sandbox.wait(timeout=10)

    other = elapsed - TIMES["kustomize"] - TIMES["cluster"] - TIMES["database"]
    print(f"instances upgraded:        {done}/{args.instances} in {elapsed:.1f} s")
    print(f"instances per second:      {done / elapsed:.2f}")
    print(f"API requests per instance: {requests / max(done, 1):.1f} (total {requests})")
    print("time split:")
    for bucket, seconds in (("kustomize", TIMES["kustomize"]), ("cluster (apply, prune, waits)", TIMES["cluster"]),
                            ("database", TIMES["database"]), ("other (Python, RQ, Redis)", other)):  # fmt: skip
        print(f"  {bucket:32s} {seconds:7.1f} s  {100 * seconds / elapsed:5.1f} %")


if __name__ == "__main__":
    main()
