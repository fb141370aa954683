"""The sandbox of `make run`: kubesim with simulated controllers, registered as the cluster "sandbox".

The emulator keeps everything in memory, so each start (the first one, or a restart after it died) registers
the cluster again and re-deploys the instances that live on it; their operations that were under way end
failed ("the sandbox restarted").
"""

import signal
import threading

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve an emulated Kubernetes cluster for `make run` and deploy the sandbox's instances to it."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8090)

    def handle(self, *args, port: int, **options):
        from instances.engine.health import check_cluster
        from instances.sandbox import ensure_sandbox_cluster, restore_sandbox
        from kubesim import KubernetesEmulator, SimulatedControllers, kubeconfig_for

        emulator = KubernetesEmulator(port=port, namespace_termination_seconds=2.0)
        url = emulator.start()
        controllers = SimulatedControllers(
            emulator, rollout_seconds=4.0, job_seconds=3.0, progress_deadline_seconds=15.0, cron_interval=300.0
        ).start()
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
