"""Serve the emulated Kubernetes API with simulated controllers (the sandbox cluster of `make run`)."""

import signal
import threading

from django.core.management.base import BaseCommand

from instances.kube.emulator import KubernetesEmulator
from instances.kube.simulator import SimulatedControllers


class Command(BaseCommand):
    help = "Run an emulated Kubernetes API on 127.0.0.1 whose rollouts progress over a few seconds."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8090)
        parser.add_argument("--rollout-seconds", type=float, default=4.0)
        parser.add_argument("--job-seconds", type=float, default=3.0)
        parser.add_argument("--progress-deadline-seconds", type=float, default=15.0)
        parser.add_argument("--cron-interval", type=float, default=300.0, help="seconds between scheduled backups")
        parser.add_argument("--tick", type=float, default=0.1, help="seconds between two controller passes")

    def handle(self, *args, port, rollout_seconds, job_seconds, progress_deadline_seconds, cron_interval, tick, **opts):
        emulator = KubernetesEmulator(port=port, namespace_termination_seconds=2.0)
        url = emulator.start()
        controllers = SimulatedControllers(
            emulator,
            rollout_seconds=rollout_seconds,
            job_seconds=job_seconds,
            progress_deadline_seconds=progress_deadline_seconds,
            cron_interval=cron_interval,
            tick=tick,
        ).start()
        self.stdout.write(f"Emulated Kubernetes API at {url} (sandbox; simulated controllers)")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
        signal.signal(signal.SIGINT, lambda *a: stop.set())
        stop.wait()
        controllers.stop()
        emulator.stop()
