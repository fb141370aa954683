"""`manage.py healthcheck worker|scheduler`: exit 0 when this container's role is alive, 1 otherwise.

- worker: an RQ worker of this host has sent a heartbeat lately (workers beat while idle and while working);
- scheduler: the periodic dispatcher it enqueues has run lately (its JobRun records).
The web server has its own check: ``/health/``.
"""

import datetime
import socket

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

# A worker beats at least every (job timeout or worker TTL) / ...; 420 s is RQ's default worker TTL.
WORKER_SILENCE = datetime.timedelta(seconds=420)


class Command(BaseCommand):
    help = "Exit 0 when this host's worker, or the periodic scheduler, is alive (for container health checks)."

    def add_arguments(self, parser):
        parser.add_argument("role", choices=["worker", "scheduler"])

    def handle(self, *args, role: str, **options):
        healthy, detail = self.worker() if role == "worker" else self.scheduler()
        if not healthy:
            raise CommandError(detail)
        self.stdout.write(detail)

    @staticmethod
    def worker() -> tuple[bool, str]:
        from rq import Worker

        from core.jobs import get_queue

        host, now = socket.gethostname(), timezone.now()
        for worker in Worker.all(connection=get_queue("default").connection):
            beat = worker.last_heartbeat
            if beat is not None and timezone.is_naive(beat):
                beat = beat.replace(tzinfo=datetime.UTC)
            if worker.hostname == host and beat is not None and now - beat < WORKER_SILENCE:
                return True, f"worker {worker.name} beat at {beat:%H:%M:%S}"
        return False, f"no worker of {host} has beaten in the last {WORKER_SILENCE.seconds} s"

    @staticmethod
    def scheduler() -> tuple[bool, str]:
        from core.models import JobRun

        limit = timezone.now() - datetime.timedelta(seconds=3 * settings.PORTAL_DISPATCH_INTERVAL + 60)
        last = JobRun.objects.filter(name="dispatch").order_by("-started_at").first()
        if last is None or last.started_at < limit:
            return False, "the dispatcher has not run lately"
        return True, f"the dispatcher ran at {last.started_at:%H:%M:%S}"
