"""The sandbox of `make run`: kubesim with simulated controllers, registered as the cluster "sandbox".

The emulator keeps everything in memory, so each start (the first one, or a restart after it died) registers
the cluster again and re-deploys the instances that live on it; their operations that were under way end
failed ("the sandbox restarted").

With ``--run-jobs`` (what `make run` passes when it serves the local S3 storage), each Job runs its real command
on this machine (``kubesim.jobrunner``): the backup Jobs dump the instance's ``sandbox_<namespace>`` database of the
local PostgreSQL to the storage, and the restore Jobs restore it from there.
"""

import signal
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

# What a Job of the sandbox reaches on this machine instead of the cluster's Services. Restored objects belong to
# the local superuser (the sandbox databases have no application role).
SANDBOX_JOB_ENV = {
    "PGHOST": "127.0.0.1",
    "PGPORT": "5432",
    "PGUSER": "postgres",
    "PGDATABASE": "sandbox_{namespace}",
    "RESTORE_ROLE": "postgres",
}
# How long the sandbox waits for the local storage (started next to it) to create its bucket.
STORAGE_WAIT_SECONDS = 30


class Command(BaseCommand):
    help = "Serve an emulated Kubernetes cluster for `make run` and deploy the sandbox's instances to it."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8090)
        parser.add_argument("--run-jobs", action="store_true", help="run each Job's real command on this machine")

    def handle(self, *args, port: int, run_jobs: bool, **options):
        from instances.engine.health import check_cluster
        from instances.sandbox import ensure_sandbox_cluster, restore_sandbox
        from kubesim import KubernetesEmulator, SimulatedControllers, kubeconfig_for
        from kubesim.jobrunner import HostJobRunner

        emulator = KubernetesEmulator(port=port, namespace_termination_seconds=2.0)
        url = emulator.start()
        job_runner = None
        if run_jobs:
            self.ensure_bucket()
            # The aws CLI is in the virtualenv, next to this Python.
            job_runner = HostJobRunner(emulator, env=SANDBOX_JOB_ENV, path=[str(Path(sys.executable).parent)])
        controllers = SimulatedControllers(
            emulator, rollout_seconds=4.0, job_seconds=3.0, progress_deadline_seconds=15.0, cron_interval=300.0,
            job_runner=job_runner,
        ).start()  # fmt: skip
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            cluster = ensure_sandbox_cluster(kubeconfig_for(url))
            check_cluster(cluster)
            operations = restore_sandbox(cluster)
            self.stdout.write(f"Sandbox cluster at {url}: deploying {len(operations)} instance(s).")
            stop.wait()
        finally:
            controllers.stop()
            emulator.stop()

    def ensure_bucket(self) -> None:
        """Create the backup bucket in the local storage (in memory: gone at each of its restarts)."""
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        client = boto3.client(
            "s3", endpoint_url=settings.PORTAL_BACKUP_S3_ENDPOINT, region_name=settings.PORTAL_BACKUP_S3_REGION or None,
            aws_access_key_id="sandbox", aws_secret_access_key="sandbox",
            config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1}),
        )  # fmt: skip
        deadline = time.monotonic() + STORAGE_WAIT_SECONDS
        while True:
            try:
                client.create_bucket(Bucket=settings.PORTAL_BACKUP_S3_BUCKET)
                return
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    return
                raise
            except BotoCoreError as error:  # not started yet: it starts next to the sandbox
                if time.monotonic() > deadline:
                    self.stderr.write(f"The backup storage at {settings.PORTAL_BACKUP_S3_ENDPOINT} is down: {error}")
                    return
                time.sleep(0.5)
