"""`make run`: the web server, an RQ worker and the RQ scheduler together, stopped together with Ctrl-C."""

import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.management.commands.seed_demo import DEMO_PASSWORD, UNIVERSITIES


class Command(BaseCommand):
    help = "Serve the portal at http://127.0.0.1:8000 with a worker and a scheduler (development)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args, addr: str, **options):
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        queues = list(settings.RQ_QUEUES)
        commands = {
            "worker": [*manage, "rqworker", "--with-scheduler", *queues],
            "web": [*manage, "runserver", "--noreload", addr],
        }
        processes = {name: subprocess.Popen(cmd) for name, cmd in commands.items()}
        self._banner(addr)
        stop = {"now": False}

        def _stop(signum, frame):
            stop["now"] = True

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        try:
            while not stop["now"]:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(f"{name} exited with status {process.returncode}; stopping.")
                        stop["now"] = True
                time.sleep(0.5)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()
            for process in processes.values():
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()

    def _banner(self, addr: str) -> None:
        accounts = ["maintainer", "maintainer2"] + [f"admin-{slug}" for slug, *_ in UNIVERSITIES]
        accounts += [f"viewer-{slug}" for slug, *_ in UNIVERSITIES]
        self.stdout.write(
            self.style.SUCCESS(f"\n  SaaS Portal: http://{addr}/\n")
            + "  Demo accounts (password "
            + DEMO_PASSWORD
            + "): "
            + ", ".join(accounts)
            + "\n  Press Ctrl-C to stop.\n"
        )
