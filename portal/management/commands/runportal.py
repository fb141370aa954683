"""`make run`: the web server, RQ workers, the periodic scheduler and (without a real cluster) the sandbox.

Everything stops together with Ctrl-C.
"""

import signal
import subprocess
import sys
import time
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from instances.management.commands.seed_demo import DEMO_PASSWORD, UNIVERSITIES


class Command(BaseCommand):
    help = "Serve the portal at http://127.0.0.1:8000 with workers, scheduler and sandbox cluster (development)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--sandbox-port", type=int, default=8090)

    def handle(self, *args, addr: str, sandbox_port: int, **options):
        from instances.models import Cluster
        from instances.sandbox import SANDBOX_NAME

        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        processes: dict[str, subprocess.Popen] = {}
        use_sandbox = settings.PORTAL_SANDBOX and not Cluster.objects.exclude(name=SANDBOX_NAME).exists()
        try:
            if use_sandbox:
                processes["sandbox"] = subprocess.Popen(
                    [sys.executable, "-m", "kubesim", "--port", str(sandbox_port)], cwd=settings.BASE_DIR
                )
                url = f"http://127.0.0.1:{sandbox_port}"
                self._wait_for(url + "/version", processes["sandbox"])
                self._restore(url)
            commands = {
                "worker-operations": [*manage, "rqworker", "--with-scheduler", "operations"],
                "worker": [*manage, "rqworker", "--with-scheduler", "default", "sync"],
                "scheduler": [*manage, "rqcron", "portal.cron"],
                "web": [*manage, "runserver", "--noreload", addr],
            }
            for name, command in commands.items():
                processes[name] = subprocess.Popen(command)
            self._banner(addr, use_sandbox)
            self._supervise(processes)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()
            for process in processes.values():
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()

    def _wait_for(self, url: str, process: subprocess.Popen) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise CommandError("the sandbox cluster could not start (is its port free?)")
            try:
                with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own local emulator
                    return
            except OSError:
                time.sleep(0.2)
        raise CommandError(f"the sandbox cluster did not answer at {url}")

    def _restore(self, url: str) -> None:
        from instances.engine.health import check_cluster
        from instances.sandbox import ensure_sandbox_cluster, restore_sandbox
        from kubesim import kubeconfig_for

        cluster = ensure_sandbox_cluster(kubeconfig_for(url))
        check_cluster(cluster)
        operations = restore_sandbox(cluster)
        self.stdout.write(f"Sandbox cluster at {url}: deploying {len(operations)} instance(s).")

    def _supervise(self, processes: dict[str, subprocess.Popen]) -> None:
        stop = {"now": False}

        def _stop(signum, frame):
            stop["now"] = True

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        while not stop["now"]:
            for name, process in processes.items():
                if process.poll() is not None:
                    self.stderr.write(f"{name} exited with status {process.returncode}; stopping.")
                    stop["now"] = True
            time.sleep(0.5)

    def _banner(self, addr: str, sandbox: bool) -> None:
        accounts = ["maintainer", "maintainer2"] + [f"admin-{slug}" for slug, *_ in UNIVERSITIES]
        accounts += [f"viewer-{slug}" for slug, *_ in UNIVERSITIES]
        cluster = "an emulated sandbox cluster (simulated controllers)" if sandbox else "the configured clusters"
        self.stdout.write(
            self.style.SUCCESS(f"\n  SaaS Portal: http://{addr}/\n")
            + f"  Demo accounts (password {DEMO_PASSWORD}): "
            + ", ".join(accounts)
            + f"\n  Deploying to {cluster}. Press Ctrl-C to stop.\n"
        )
