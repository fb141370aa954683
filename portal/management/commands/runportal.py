"""`make run`: the web server, RQ workers, the periodic scheduler and (without a real cluster) the sandbox,
kept running by supervisor.

Supervisor (a process manager made for this, rather than more process code of our own) starts every program in
a process group of its own, restarts one that dies (waiting a little longer after each quick failure, and
saying so in its log), and on Ctrl-C or SIGTERM stops every group it started, work horses included. Every
program runs under ``portal.procguard``, so that a worker whose main process is killed takes its work horse and
its scheduler (and the scheduler's lock) with it before supervisor starts a new one, and so that nothing
outlives supervisor itself.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from instances.management.commands.seed_demo import DEMO_PASSWORD, UNIVERSITIES
from registry.demo import BINARY, DemoRegistryServer

MOTO_SERVER = Path(sys.executable).with_name("moto_server")

# The sandbox's backup storage: moto's S3 server on this port, in memory (make run; README "Sandbox backups").
SANDBOX_STORAGE_PORT = 8092
SANDBOX_STORAGE = {
    "PORTAL_BACKUP_S3_ENDPOINT": f"http://127.0.0.1:{SANDBOX_STORAGE_PORT}",
    "PORTAL_BACKUP_S3_BUCKET": "sandbox-backups",
    "PORTAL_BACKUP_S3_REGION": "us-east-1",
}

# Every program: restarted when it exits, stopped with its whole process group, output on the terminal.
PROGRAM = """
[program:{name}]
command={command}
directory={directory}
priority={priority}
autostart=true
autorestart=true
startsecs=1
startretries=1000
stopsignal=TERM
stopwaitsecs=15
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0
"""


class Command(BaseCommand):
    help = "Serve the portal at http://127.0.0.1:8000 with workers, scheduler and sandbox cluster (development)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--sandbox-port", type=int, default=8090)

    def handle(self, *args, addr: str, sandbox_port: int, **options):
        from instances.models import Cluster
        from instances.sandbox import SANDBOX_NAME

        supervisord = shutil.which("supervisord", path=str(Path(sys.executable).parent)) or shutil.which("supervisord")
        if supervisord is None:
            raise CommandError("supervisord is not installed: run `make run`, which installs it in .venv")
        use_sandbox = settings.PORTAL_SANDBOX and not Cluster.objects.exclude(name=SANDBOX_NAME).exists()
        storage = use_sandbox and self.use_sandbox_storage()
        config = self.write_config(self.programs(addr, sandbox_port if use_sandbox else None, storage=storage))
        self.banner(addr, use_sandbox)
        sys.stdout.flush()
        # Supervisor takes this process's place: Ctrl-C and SIGTERM reach it, and it stops everything it started.
        os.execv(supervisord, [supervisord, "--configuration", str(config)])  # noqa: S606 - our own program

    @staticmethod
    def use_sandbox_storage() -> bool:
        """Serve a local S3 storage for the sandbox's backups, unless a real one is configured; every program
        (inheriting this environment through supervisor) then backs up there."""
        if "PORTAL_BACKUP_S3_ENDPOINT" in os.environ or not MOTO_SERVER.exists():
            return False
        os.environ.update(SANDBOX_STORAGE)
        return True

    @staticmethod
    def programs(addr: str, sandbox_port: int | None, *, storage: bool = False) -> dict[str, str]:
        manage = f"{sys.executable} {settings.BASE_DIR / 'manage.py'}"
        guard = f"{sys.executable} -m portal.procguard"
        guarded = f"{guard} {manage}"
        programs = {}
        # The demo registry that seed_demo filled, served from the same storage (absent when seed_demo skipped it).
        demo_registry = DemoRegistryServer(settings.PORTAL_DEMO_REGISTRY_DIR, settings.PORTAL_DEMO_REGISTRY_PORT)
        if demo_registry.config_path.exists() and shutil.which(BINARY):
            demo_registry.write_config()
            programs["registry"] = f"{guard} {' '.join(demo_registry.command())}"
        if storage:
            programs["storage"] = f"{guard} {MOTO_SERVER} -H 127.0.0.1 -p {SANDBOX_STORAGE_PORT}"
        if sandbox_port is not None:
            # With the storage, the sandbox's Jobs run their real commands (dump to it, restore from it).
            programs["sandbox"] = f"{guarded} runsandbox --port {sandbox_port}" + (" --run-jobs" if storage else "")
        programs.update(
            {
                "worker-operations": f"{guarded} rqworker --with-scheduler operations",
                "worker": f"{guarded} rqworker --with-scheduler default sync",
                "worker-storage": f"{guarded} rqworker storage",
                "scheduler": f"{guarded} rqcron portal.cron",
                "web": f"{guarded} runserver --noreload {addr}",
            }
        )
        return programs

    @staticmethod
    def write_config(programs: dict[str, str]) -> Path:
        """supervisord's configuration, in a directory of its own for this run (pid file, log)."""
        run = Path(tempfile.mkdtemp(prefix="saas-portal-run-"))
        lines = [
            "[supervisord]",
            "nodaemon=true",
            f"logfile={run / 'supervisord.log'}",
            f"pidfile={run / 'supervisord.pid'}",
            f"childlogdir={run}",
            "loglevel=info",
        ]
        sections = [
            PROGRAM.format(name=name, command=command, directory=settings.BASE_DIR, priority=10 * (index + 1))
            for index, (name, command) in enumerate(programs.items())
        ]
        config = run / "supervisord.conf"
        config.write_text("\n".join(lines) + "\n" + "".join(sections))
        return config

    def banner(self, addr: str, sandbox: bool) -> None:
        accounts = ["maintainer", "maintainer2"] + [f"admin-{slug}" for slug, *_ in UNIVERSITIES]
        accounts += [f"viewer-{slug}" for slug, *_ in UNIVERSITIES]
        cluster = "an emulated sandbox cluster (simulated controllers)" if sandbox else "the configured clusters"
        self.stdout.write(
            self.style.SUCCESS(f"\n  SaaS Portal: http://{addr}/\n")
            + f"  Demo accounts (password {DEMO_PASSWORD}): "
            + ", ".join(accounts)
            + f"\n  Deploying to {cluster}. A program that dies is restarted. Press Ctrl-C to stop.\n"
        )
