"""Benchmark: upgrade a fleet of N instances on an emulated cluster, against the floor of the same work.

    .venv/bin/python bench/fleet_upgrade.py [--instances 100] [--workers 2] [--latency-samples 20]

In one run and with the same number of worker processes, it measures:
- the floor: `kustomize build` of each instance's overlay plus one raw server-side apply per rendered object,
  no portal (no database, no queue, no backup, no rollout to follow);
- the portal: N upgrade requests filed (their previews rendered), then approved at once; real RQ worker
  processes take them from approval to success (backup, render, apply, rollout);
- their ratio, the Kubernetes API requests per upgrade (counted by the emulator), and the latency from an
  approval to its first apply request, one approval at a time on idle workers (p50, p95).

Uses its own PostgreSQL database (saas_portal_bench, recreated) and Redis database 14; the emulated cluster
runs in this process, the workers in their own. A script, not a test: its figures depend on the machine.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/saas_portal_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
OLD, NEW, NEWER = "1.2.4", "1.2.6", "1.2.7"


def prepare_database() -> None:
    import psycopg

    name = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


# --- the floor -----------------------------------------------------------------------------------------------


def floor_worker(url: str, slugs: list[str]) -> int:
    """Render each instance at the new version with Kustomize and apply every object once; returns the requests."""
    import json

    import urllib3

    from instances.kube.kinds import kind_of
    from instances.kube.overlay import ImageRef, OverlaySpec
    from instances.kube.render import render

    images = {
        "smile-core": ImageRef("registry.example.org/smile/core", tag=NEW),
        "smile-nginx": ImageRef("registry.example.org/smile/nginx", tag=NEW),
        "smile-timemachine": ImageRef("registry.example.org/smile/timemachine", tag=NEW),
        "memcached": ImageRef("docker.io/library/memcached", tag="1.6.29-alpine"),
        "postgres": ImageRef("docker.io/library/postgres", tag="16.4-alpine"),
    }
    http = urllib3.PoolManager(maxsize=2)
    requests = 0
    for slug in slugs:
        rendered = render(OverlaySpec(instance=slug, organisation="bench", images=images, host=f"{slug}.test"))
        for obj in rendered.objects:
            kind, meta = kind_of(obj["apiVersion"], obj["kind"]), obj["metadata"]
            path = kind.path(meta.get("namespace") if kind.namespaced else None, meta["name"])
            response = http.request(
                "PATCH", f"{url}{path}?fieldManager=floor&force=true", body=json.dumps(obj),
                headers={"Content-Type": "application/apply-patch+yaml"}, timeout=30,
            )  # fmt: skip
            assert response.status < 300, (response.status, path)
            requests += 1
    return requests


def measure_floor(url: str, count: int, workers: int) -> tuple[float, int]:
    slugs = [f"floor-{i:04d}" for i in range(count)]
    shares = [slugs[i::workers] for i in range(workers)]
    # "spawn": this process runs the emulator's threads, which a forked child must not inherit.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        started = time.perf_counter()
        requests = sum(pool.starmap(floor_worker, [(url, share) for share in shares]))
        return time.perf_counter() - started, requests


# --- the portal ----------------------------------------------------------------------------------------------


def start_workers(count: int) -> list[subprocess.Popen]:
    command = [sys.executable, str(ROOT / "manage.py"), "rqworker", "operations", "default"]
    return [
        subprocess.Popen(command, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(count)
    ]


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(timeout=30)


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-samples", type=int, default=20)
    args = parser.parse_args()
    prepare_database()
    logging.disable(logging.WARNING)

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from core.audit import AuditContext
    from core.choices import MAINTAINERS_GROUP, MembershipRole
    from core.jobs import get_queue
    from core.models import Membership, Organisation
    from instances import workflow
    from instances.choices import InstanceStatus, OperationStatus, RequestStatus
    from instances.models import Application, ApplicationVersion, ChangeRequest, Cluster, Instance, Operation
    from instances.sandbox import restore_sandbox
    from kubesim import KubernetesEmulator, SimulatedControllers, kubeconfig_for

    emulator = KubernetesEmulator(request_log_size=1_000_000)
    url = emulator.start()
    controllers = SimulatedControllers(emulator, rollout_seconds=0, job_seconds=0, tick=0.02, cron_interval=None)
    controllers.start()
    get_queue("default").connection.flushdb()

    smile = Application.objects.get(slug="smile")
    old, new, newer = (ApplicationVersion.objects.create(application=smile, version=v) for v in (OLD, NEW, NEWER))
    cluster = Cluster.objects.create(name="bench", kubeconfig=kubeconfig_for(url), is_default=True)
    organisation = Organisation.objects.create(name="Bench University", slug="bench")
    users = get_user_model().objects
    requester = users.create_user("bench-admin", password="unused-password-1")
    Membership.objects.create(user=requester, organisation=organisation, role=MembershipRole.ADMIN)
    maintainer = users.create_user("bench-maintainer", password="unused-password-2")
    maintainer.groups.add(Group.objects.get(name=MAINTAINERS_GROUP))
    as_requester = AuditContext(user=requester, label=requester.username)
    as_maintainer = AuditContext(user=maintainer, label=maintainer.username)
    Instance.objects.bulk_create(
        Instance(organisation=organisation, application=smile, slug=f"bench-{i:04d}", hostname=f"bench-{i:04d}.test",
                 cluster=cluster, current_version=old, status=InstanceStatus.PROVISIONING)
        for i in range(args.instances)
    )  # fmt: skip
    workers = start_workers(args.workers)
    try:
        # Not measured: every instance deployed at the old version.
        restore_sandbox(cluster)
        wait_until(lambda: Instance.objects.filter(status=InstanceStatus.RUNNING).count() == args.instances,
                   60 + args.instances, "the first deployments")  # fmt: skip

        floor_seconds, floor_requests = measure_floor(url, args.instances, args.workers)

        # Filed (and their previews rendered) before the measure: that is the requester's time, not the upgrade's.
        requests = [
            workflow.request_update(as_requester, instance, version=new)
            for instance in Instance.objects.order_by("slug")
        ]
        wait_until(lambda: get_queue("default").count == 0, 60 + args.instances, "the previews")
        emulator.reset_log()
        started = time.perf_counter()
        for request in requests:
            workflow.approve(as_maintainer, request)
        succeeded = ChangeRequest.objects.filter(pk__in=[r.pk for r in requests], status=RequestStatus.SUCCEEDED)
        finished = ChangeRequest.objects.filter(pk__in=[r.pk for r in requests], status__in=RequestStatus.terminal())
        wait_until(lambda: finished.count() == args.instances, 120 + 5 * args.instances, "the upgrades")
        portal_seconds = time.perf_counter() - started
        done = succeeded.count()
        api_requests = len(emulator.requests)

        # Latency: one approval at a time, on idle workers, to the first apply request in the instance's namespace.
        latencies = []
        for instance in Instance.objects.order_by("slug")[: args.latency_samples]:
            request = workflow.request_update(as_requester, instance, version=newer)
            wait_until(lambda: get_queue("default").count == 0, 60, "a preview")
            emulator.reset_log()
            approved = time.time()
            workflow.approve(as_maintainer, request)
            namespace = f"/namespaces/{instance.namespace}/"
            ended = Operation.objects.filter(request=request, status__in=OperationStatus.terminal())
            wait_until(ended.exists, 60, "an upgrade")
            applies = [r.at for r in emulator.requests if r.method == "PATCH" and namespace in r.path]
            latencies.append(min(applies) - approved)
    finally:
        stop_workers(workers)
        controllers.stop()
        emulator.stop()

    floor_rate, portal_rate = args.instances / floor_seconds, done / portal_seconds
    print(f"instances:                          {args.instances}, workers: {args.workers}")
    print(f"floor (kustomize + raw applies):    {floor_rate:.2f} instances/s "
          f"({floor_requests / args.instances:.0f} requests each)")  # fmt: skip
    print(f"portal (approval to success):       {portal_rate:.2f} instances/s ({done}/{args.instances} succeeded)")
    print(f"portal / floor:                     {100 * portal_rate / floor_rate:.0f} %")
    print(f"API requests per upgrade:           {api_requests / max(done, 1):.1f} (total {api_requests})")
    print(f"approval -> first apply (s):        p50 {statistics.median(latencies):.2f}, "
          f"p95 {statistics.quantiles(latencies, n=20)[-1]:.2f} over {len(latencies)}")  # fmt: skip


if __name__ == "__main__":
    main()
