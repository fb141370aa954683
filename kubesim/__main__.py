"""`python -m kubesim --port 8090`: serve an emulated cluster whose rollouts, Jobs and CronJobs progress.

Runs until SIGINT or SIGTERM. Everything is in memory: a restart starts from an empty cluster.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from .controllers import SimulatedControllers
from .jobrunner import HostJobRunner
from .server import KubernetesEmulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kubesim", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--rollout-seconds", type=float, default=4.0, help="how long a rollout takes")
    parser.add_argument("--job-seconds", type=float, default=3.0, help="how long a Job runs")
    parser.add_argument(
        "--progress-deadline-seconds", type=float, default=15.0, help="when a rollout that cannot finish fails"
    )
    parser.add_argument("--cron-interval", type=float, default=300.0, help="seconds between two CronJob runs")
    parser.add_argument("--namespace-termination-seconds", type=float, default=2.0)
    parser.add_argument("--tick", type=float, default=0.1, help="seconds between two controller passes")
    parser.add_argument("--no-controllers", action="store_true", help="serve the API only; nothing progresses")
    parser.add_argument(
        "--run-jobs", action="store_true", help="run each Job's real command on the host (kubesim/jobrunner.py)"
    )
    parser.add_argument(
        "--job-env", action="append", default=[], metavar="KEY=VALUE",
        help="with --run-jobs: set a variable of every Job ({namespace} is the Job's namespace); repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--job-path", action="append", default=[], metavar="DIR", help="with --run-jobs: prepend DIR to PATH"
    )
    args = parser.parse_args(argv)
    for item in args.job_env:
        if "=" not in item or not item.split("=", 1)[0]:
            parser.error(f"--job-env expects KEY=VALUE, not {item!r}")
    return args


def _job_runner(emulator: KubernetesEmulator, args: argparse.Namespace) -> HostJobRunner | None:
    if not args.run_jobs:
        return None
    env = dict(item.split("=", 1) for item in args.job_env)
    return HostJobRunner(emulator, env=env, path=args.job_path)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    emulator = KubernetesEmulator(
        args.host, args.port, namespace_termination_seconds=args.namespace_termination_seconds
    )
    url = emulator.start()
    controllers = None
    if not args.no_controllers:
        controllers = SimulatedControllers(
            emulator,
            rollout_seconds=args.rollout_seconds,
            job_seconds=args.job_seconds,
            progress_deadline_seconds=args.progress_deadline_seconds,
            cron_interval=args.cron_interval,
            job_runner=_job_runner(emulator, args),
            tick=args.tick,
        ).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"kubesim: Kubernetes API at {url}" + ("" if controllers else " (no controllers)"), flush=True)
    stop.wait()
    if controllers:
        controllers.stop()
    emulator.stop()


if __name__ == "__main__":
    main()
