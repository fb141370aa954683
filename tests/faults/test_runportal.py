"""`make run`'s portal under faults, with real processes: SIGKILL of the operations worker (its main process)
during an upgrade, SIGKILL of the sandbox, a Redis flush with work queued, then SIGTERM of `runportal`.

After each fault the portal is back within seconds, without a restart by hand; at the end every operation has
ended, none ran twice, what the portal records of each instance is what the cluster runs, no page answered a
server error, and nothing `runportal` started is left running.
"""

import json
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from tests.processes import REDIS_URL, Portal, alive, descendants, free_port, wait_for_http, wait_until

pytestmark = pytest.mark.faults
# The operations worker itself (not the guard that runs it).
WORKER = r"^\S*python \S*manage\.py rqworker --with-scheduler operations$"

STATE = """
import json
from instances.models import ChangeRequest, Instance, Operation
print(json.dumps({
    "instances": {i.slug: [i.status, i.current_version.version if i.current_version else None, i.namespace]
                  for i in Instance.objects.select_related("current_version")},
    "operations": list(Operation.objects.values_list("pk", "status", "request_id", "attempts")),
    "requests": list(ChangeRequest.objects.values_list("pk", "status")),
}))
"""
UPGRADE = """
from django.contrib.auth import get_user_model
from core.audit import AuditContext
from instances import workflow
from instances.models import ApplicationVersion, Instance
users = get_user_model().objects
request = workflow.request_update(AuditContext(user=users.get(username="admin-{org}"), label="admin-{org}"),
    Instance.objects.get(slug="{slug}"), version=ApplicationVersion.objects.get(version="{version}"))
workflow.approve(AuditContext(user=users.get(username="maintainer"), label="maintainer"), request)
print(request.pk)
"""


def pids_of(pattern: str, among: set[int]) -> list[int]:
    pids = []
    for pid in among:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        if re.search(pattern, command):
            pids.append(pid)
    return pids


def cluster_images(sandbox: str, namespace: str) -> dict[str, str]:
    with urllib.request.urlopen(f"{sandbox}/apis/apps/v1/namespaces/{namespace}/deployments", timeout=5) as answer:
        items = json.load(answer)["items"]
    return {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"] for d in items}


class Visitor(threading.Thread):
    """Reads the login page and the health check every half second, keeping the status codes."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.answers, self.stop = url, [], threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            for path in ("/accounts/login/", "/health/", "/api/v1/"):
                try:
                    with urllib.request.urlopen(self.url + path, timeout=10) as answer:
                        self.answers.append(answer.status)
                except urllib.error.HTTPError as error:
                    self.answers.append(error.code)
                except OSError:
                    self.answers.append(0)  # the server is not answering at all (it is never restarted here)


@pytest.fixture
def portal(tmp_path):
    redis.Redis.from_url(REDIS_URL).flushdb()
    portal = Portal(
        f"sqlite:///{tmp_path / 'db.sqlite3'}",
        PORTAL_SANDBOX="1",
        PORTAL_OPERATION_STALE_AFTER="6",
        PORTAL_DISPATCH_INTERVAL="2",
        PORTAL_SYNC_INTERVAL="5",
    )
    portal.manage("migrate", "--noinput")
    portal.manage("seed_demo")
    portal.log = tmp_path / "runportal.log"
    yield portal
    portal.stop()
    redis.Redis.from_url(REDIS_URL).flushdb()


def test_runportal_under_faults(portal):
    web, sandbox = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox}"
    with portal.log.open("w") as log:
        runportal = portal.start("runportal", "--addr", f"127.0.0.1:{web}", "--sandbox-port", str(sandbox), output=log)

    def state() -> dict:
        return json.loads(portal.manage("shell", "-v", "0", "-c", STATE).strip().splitlines()[-1])

    def settled() -> bool:
        now = state()
        return all(s == "running" for s, _v, _ns in now["instances"].values()) and all(
            op[1] in ("succeeded", "failed", "errored") for op in now["operations"]
        )

    wait_for_http(f"http://127.0.0.1:{web}/health/", 60)
    visitor = Visitor(f"http://127.0.0.1:{web}")
    visitor.start()  # pages read all along, through every fault
    wait_until(settled, 90, "the first deployments")

    # 1. An upgrade, and the operations worker's main process killed while it follows the rollout.
    script = UPGRADE.format(org="unistra", slug="smile-unistra", version="1.2.6")
    request = portal.manage("shell", "-v", "0", "-c", script).strip().splitlines()[-1]
    following = (
        f"from instances.models import Operation as O; o = O.objects.filter(request_id={request}).first(); "
        "print(bool(o and o.status == 'running' and any('rollout:' in l['message'] for l in o.log)))"
    )
    wait_until(lambda: "True" in portal.manage("shell", "-v", "0", "-c", following), 60, "the upgrade's rollout")
    workers = pids_of(WORKER, descendants(runportal.pid))
    main = min(workers)  # the worker's main process; the larger pids are its work horse and scheduler
    os.kill(main, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_until(
        lambda: [p for p in pids_of(WORKER, descendants(runportal.pid)) if p not in workers],
        5, "a new operations worker",
    )  # fmt: skip
    assert time.monotonic() - killed_at < 5
    assert not [p for p in workers if alive(p)], [Path(f"/proc/{p}/stat").read_text() for p in workers if alive(p)]
    wait_until(lambda: dict(state()["requests"]).get(int(request)) == "succeeded", 90, "the upgrade to resume")

    # 2. The sandbox killed: back within 5 s, and its instances deployed again.
    os.kill(pids_of(r"^\S*python \S*manage\.py runsandbox", descendants(runportal.pid))[0], signal.SIGKILL)
    wait_for_http(f"{sandbox_url}/version", 5)
    wait_until(settled, 90, "the instances redeployed to the restarted sandbox")

    # 3. Redis flushed as an upgrade is handed over: PostgreSQL holds the truth, the dispatcher brings it back.
    script = UPGRADE.format(org="unicaen", slug="smile-unicaen", version="1.2.6")
    request = portal.manage("shell", "-v", "0", "-c", script).strip().splitlines()[-1]
    redis.Redis.from_url(REDIS_URL).flushdb()
    wait_until(lambda: dict(state()["requests"]).get(int(request)) == "succeeded", 90, "the upgrade after the flush")
    wait_until(settled, 60, "the portal after a Redis flush")

    # The record matches the cluster; nothing ran twice; nothing answered a server error.
    final = state()
    for slug, (_status, version, namespace) in final["instances"].items():
        images = cluster_images(sandbox_url, namespace)
        # The demo's images come from its registry, pinned by digest.
        registry = f"127.0.0.1:{portal.env['PORTAL_DEMO_REGISTRY_PORT']}"
        assert images["smile-core"].startswith(f"{registry}/smile/core:{version}@sha256:"), (slug, images)
    by_request = [op[2] for op in final["operations"] if op[2] is not None]
    assert len(by_request) == len(set(by_request))  # one operation per request
    assert not re.search(r'HTTP/1\.[01]" 5\d\d ', portal.log.read_text())
    visitor.stop.set()
    visitor.join(timeout=10)
    # The portal never stopped answering, and never with a server error.
    assert visitor.answers and not [code for code in visitor.answers if code >= 500 or code == 0], visitor.answers

    # 4. SIGTERM to runportal: everything it started stops with it.
    started = descendants(runportal.pid)
    assert len(started) >= 7
    runportal.send_signal(signal.SIGTERM)
    runportal.wait(timeout=40)
    wait_until(lambda: not [p for p in started if alive(p)], 10, "every process to stop")
