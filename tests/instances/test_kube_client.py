"""The cluster adapter against the Kubernetes API emulator, over real HTTP."""

import base64
import copy
import http.server
import socket
import threading
import time

import pytest
import yaml

from instances.kube.client import ClusterClient, PermanentClusterError, TransientClusterError
from instances.kube.errors import WatchExpired
from instances.kube.kinds import MANAGED_BY_LABEL

NS = "smile-unistra"
MANAGED = {MANAGED_BY_LABEL: "saas-portal", "portal.example.org/instance": "smile-unistra"}
SELECTOR = f"{MANAGED_BY_LABEL}=saas-portal,portal.example.org/instance=smile-unistra"
SECRET_VALUE = "hunter2-database-password"


def meta(name, namespace=NS, **extra):
    return {"name": name, "namespace": namespace, "labels": dict(MANAGED), **extra}


def instance_manifests():
    """What an overlay renders for one instance, deliberately shuffled out of apply order."""
    labels = {"app": "smile"}
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": meta("smile"),
            "spec": {"rules": [{"host": "smile-unistra.apps.example.org"}]},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta("smile"),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "smile", "image": "registry.example.org/smile@sha256:abc"}]},
                },
            },
        },
        {"apiVersion": "v1", "kind": "Service", "metadata": meta("smile"), "spec": {"selector": labels}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("settings"), "data": {"LANG": "fr", "DEBUG": "0"}},
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta("default-deny"),
            "spec": {"podSelector": {}},
        },
        {"apiVersion": "v1", "kind": "Secret", "metadata": meta("db"), "stringData": {"password": SECRET_VALUE}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": dict(MANAGED)}},
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": meta("quota"), "spec": {"hard": {"pods": "10"}}},
    ]


def by_kind(manifests, kind):
    return next(m for m in manifests if m["kind"] == kind)


@pytest.fixture
def cluster(kube_emulator):
    with ClusterClient.for_url(kube_emulator.url, timeout=(1, 1)) as cluster:
        yield cluster


@pytest.fixture
def applied(cluster, kube_emulator):
    """The manifests applied once; returns the object versions of that apply."""
    versions = cluster.apply(instance_manifests()).versions
    kube_emulator.reset_log()
    return versions


# --- apply -----------------------------------------------------------------------------------------------------


def test_apply_creates_everything_in_dependency_order(cluster, kube_emulator):
    result = cluster.apply(instance_manifests())

    assert [o.kind for o in result.objects] == [
        "Namespace",
        "ResourceQuota",
        "NetworkPolicy",
        "Secret",
        "ConfigMap",
        "Service",
        "Deployment",
        "Ingress",
    ]
    assert {o.action for o in result.objects} == {"created"}
    assert result.summary() == "8 created"
    applies = [r.path for r in kube_emulator.requests if r.content_type == "application/apply-patch+yaml"]
    assert applies[0] == f"/api/v1/namespaces/{NS}" and applies[-1].endswith("/ingresses/smile")
    # One request per object: no read before the apply, no discovery.
    assert [(r.method, r.content_type) for r in kube_emulator.requests] == [
        ("PATCH", "application/apply-patch+yaml")
    ] * 8
    deployment = kube_emulator.get_object("apps/v1", "Deployment", NS, "smile")
    assert deployment["metadata"]["managedFields"][0]["manager"] == "saas-portal"


def test_reapplying_the_same_manifests_writes_nothing(cluster, kube_emulator, applied):
    result = cluster.apply(instance_manifests(), known_versions=applied)

    assert {o.action for o in result.objects} == {"unchanged"}
    assert not result.changed and result.summary() == "8 unchanged"
    assert kube_emulator.write_count == 0
    assert all(r.status < 300 for r in kube_emulator.requests)


def test_a_changed_manifest_is_applied(cluster, kube_emulator, applied):
    manifests = instance_manifests()
    by_kind(manifests, "Deployment")["spec"]["replicas"] = 2

    result = cluster.apply(manifests, known_versions=applied)

    assert [o.name for o in result.with_action("applied")] == ["smile"]
    assert result.with_action("applied")[0].kind == "Deployment"
    assert len(result.with_action("unchanged")) == 7
    assert kube_emulator.write_count == 1
    assert kube_emulator.get_object("apps/v1", "Deployment", NS, "smile")["spec"]["replicas"] == 2


def test_a_field_removed_from_the_manifest_disappears(cluster, kube_emulator, applied):
    manifests = instance_manifests()
    del by_kind(manifests, "ConfigMap")["data"]["DEBUG"]
    del by_kind(manifests, "Deployment")["metadata"]["labels"]["portal.example.org/instance"]

    cluster.apply(manifests)

    assert cluster.get("ConfigMap", NS, "settings")["data"] == {"LANG": "fr"}
    labels = cluster.get("Deployment", NS, "smile")["metadata"]["labels"]
    assert labels == {MANAGED_BY_LABEL: "saas-portal"}


def test_apply_refuses_incomplete_manifests(cluster):
    with pytest.raises(PermanentClusterError, match="no namespace"):
        cluster.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}])
    with pytest.raises(PermanentClusterError, match=r"does not serve example\.org/v1 Widget"):
        cluster.apply([{"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w"}}])


# --- prune and delete ------------------------------------------------------------------------------------------


def test_prune_deletes_what_is_no_longer_rendered_and_nothing_else(cluster, kube_emulator, applied):
    kube_emulator.seed({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hand-made", "namespace": NS}})
    other_instance = {**MANAGED, "portal.example.org/instance": "smile-unicaen"}
    kube_emulator.seed(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "other", "namespace": NS, "labels": other_instance},
        }
    )
    kube_emulator.seed(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": NS, "labels": MANAGED},
        }
    )
    manifests = [m for m in instance_manifests() if m["kind"] not in ("ConfigMap", "Secret")]
    result = cluster.apply(manifests)

    deleted = cluster.prune(NS, MANAGED, result.refs)

    assert deleted == [("v1", "ConfigMap", "settings")]
    remaining = {cm["metadata"]["name"] for cm in kube_emulator.list_objects("v1", "ConfigMap", NS)}
    assert remaining == {"hand-made", "other"}
    assert cluster.get("Secret", NS, "db") is not None  # Secrets and volumes are never pruned
    assert cluster.get("PersistentVolumeClaim", NS, "data") is not None
    assert cluster.get("Deployment", NS, "smile") is not None
    assert cluster.prune(NS, MANAGED, result.refs) == []


def test_prune_needs_the_managed_by_label_in_its_selector(cluster, applied):
    with pytest.raises(ValueError, match="managed-by"):
        cluster.prune(NS, {"portal.example.org/instance": "smile-unistra"}, set())
    assert cluster.get("ConfigMap", NS, "settings") is not None


def test_delete_namespace_cascades(cluster, kube_emulator, applied):
    assert cluster.delete_namespace(NS) is True

    assert cluster.namespace_gone(NS)
    assert cluster.get("Deployment", NS, "smile") is None
    assert kube_emulator.list_objects("v1", "ConfigMap", NS) == []
    assert cluster.delete_namespace(NS) is False


def test_namespace_gone_only_after_termination(kube_emulator, cluster, applied):
    kube_emulator.store.namespace_termination_seconds = 0.3
    cluster.delete_namespace(NS)
    assert not cluster.namespace_gone(NS)
    assert cluster.get("Namespace", None, NS)["status"]["phase"] == "Terminating"

    deadline = time.monotonic() + 3
    while not cluster.namespace_gone(NS) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cluster.namespace_gone(NS)
    assert cluster.get("Secret", NS, "db") is None


# --- errors ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [(500, "InternalError"), (503, "ServiceUnavailable"), (429, "TooManyRequests"), (409, "Conflict")],
)
def test_transient_errors(cluster, kube_emulator, code, reason):
    kube_emulator.inject(method="PATCH", path_regex="/deployments/smile$", status=code, retry_after=1)

    with pytest.raises(TransientClusterError) as error:
        cluster.apply(instance_manifests())

    assert error.value.status == code and error.value.reason == reason
    assert str(error.value) == f"apply Deployment {NS}/smile: HTTP {code} {reason}: injected failure"
    assert kube_emulator.get_object("networking.k8s.io/v1", "Ingress", NS, "smile") is None  # stopped there
    assert cluster.apply(instance_manifests()).with_action("created")  # a retry goes through


def test_throttled_reads_are_transient_too(cluster, kube_emulator):
    kube_emulator.inject(method="GET", path_regex="/deployments/smile$", status=429, retry_after=30)

    started = time.monotonic()
    with pytest.raises(TransientClusterError) as error:
        cluster.get("Deployment", NS, "smile")

    assert (error.value.status, error.value.reason) == (429, "TooManyRequests")
    assert time.monotonic() - started < 2  # Retry-After is the job runner's business, not a sleep here


@pytest.mark.parametrize(("code", "reason"), [(422, "Invalid"), (403, "Forbidden"), (400, "BadRequest")])
def test_permanent_errors(cluster, kube_emulator, code, reason):
    kube_emulator.inject(method="PATCH", path_regex="/configmaps/settings$", status=code, message="spec is wrong")

    with pytest.raises(PermanentClusterError) as error:
        cluster.apply(instance_manifests())

    assert (error.value.status, error.value.reason) == (code, reason)
    assert str(error.value) == f"apply ConfigMap {NS}/settings: HTTP {code} {reason}: spec is wrong"


def test_secret_values_never_reach_error_messages(cluster, kube_emulator):
    encoded = base64.b64encode(b"another-secret-value").decode()
    manifests = instance_manifests()
    by_kind(manifests, "Secret")["data"] = {"token": encoded}
    message = f'Secret "db" is invalid: stringData[password]: "{SECRET_VALUE}", data: another-secret-value {encoded}'
    kube_emulator.inject(method="PATCH", path_regex="/secrets/db$", status=422, message=message)

    with pytest.raises(PermanentClusterError) as error:
        cluster.apply(manifests)

    text = str(error.value)
    assert "stringData[password]" in text and "[redacted]" in text
    assert SECRET_VALUE not in text and "another-secret-value" not in text and encoded not in text
    assert error.value.__cause__ is None and error.value.__suppress_context__  # no chained response body


def test_bearer_tokens_never_reach_error_messages(kube_emulator):
    cluster = ClusterClient.for_url(kube_emulator.url, token="sk-very-secret-token", timeout=(1, 1))
    kube_emulator.inject(path_regex="/version", status=401, message="Bearer sk-very-secret-token is not valid")

    reachable, message = cluster.reachable()

    assert not reachable and "sk-very-secret-token" not in message and "Bearer [redacted]" in message


def test_a_slow_cluster_times_out_quickly_as_a_transient_error(cluster, kube_emulator):
    kube_emulator.inject_delay(10, method="PATCH", path_regex="/namespaces/smile-unistra$")

    started = time.monotonic()
    with pytest.raises(TransientClusterError, match="ReadTimeoutError"):
        cluster.apply(instance_manifests())

    assert time.monotonic() - started < 3


def test_the_client_needs_no_discovery(cluster, kube_emulator):
    # Discovery would hang.
    kube_emulator.inject_delay(10, path_regex=r"^/api$|^/apis$|^/api/v1$|^/apis/[^/]+/[^/]+$", times=None)

    started = time.monotonic()
    assert cluster.get("Deployment", NS, "smile") is None
    cluster.list("ConfigMap", NS)

    assert time.monotonic() - started < 1
    assert [r.path for r in kube_emulator.requests] == [
        f"/apis/apps/v1/namespaces/{NS}/deployments/smile",
        f"/api/v1/namespaces/{NS}/configmaps",
    ]


def test_a_kind_outside_the_portal_table_is_refused_without_a_request(cluster, kube_emulator):
    with pytest.raises(PermanentClusterError, match="Widget"):
        cluster.get("Widget", NS, "w", api_version="example.org/v1")
    assert kube_emulator.requests == []


def test_an_unreachable_cluster_is_transient():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once the probe is closed
    cluster = ClusterClient.for_url(f"http://127.0.0.1:{port}", timeout=(1, 1))

    reachable, message = cluster.reachable()
    assert not reachable and "cannot talk to the cluster" in message
    with pytest.raises(TransientClusterError):
        cluster.apply(instance_manifests())


# --- configuration ---------------------------------------------------------------------------------------------


def test_from_kubeconfig_text(kube_emulator):
    config = yaml.safe_load(kube_emulator.kubeconfig())
    config["users"][0]["user"] = {"token": "a-token"}
    config["contexts"].append({"name": "elsewhere", "context": {"cluster": "kubesim", "user": "kubesim"}})
    text = yaml.safe_dump(config)

    with ClusterClient.from_kubeconfig(text, context="elsewhere") as cluster:
        assert cluster.server_version() == "v1.32.0-kubesim"
        assert cluster.reachable() == (True, "Kubernetes v1.32.0-kubesim")
        assert cluster.host == kube_emulator.url


@pytest.mark.parametrize("text", ["", "clusters: [", "just a string", "apiVersion: v1\nkind: Config\nclusters: []\n"])
def test_unusable_kubeconfig_is_permanent(text):
    with pytest.raises(PermanentClusterError):
        ClusterClient.from_kubeconfig(text)


def test_in_cluster_outside_a_cluster_is_permanent(monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(PermanentClusterError, match="not running inside a cluster"):
        ClusterClient.in_cluster()


# --- queries and helpers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("instances", [1, 30])
def test_list_managed_is_one_request_per_kind(cluster, kube_emulator, instances):
    for index in range(instances):
        namespace = f"smile-{index}"
        labels = {MANAGED_BY_LABEL: "saas-portal"}
        kube_emulator.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        kube_emulator.seed(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "smile", "namespace": namespace, "labels": labels},
            }
        )
    kube_emulator.seed(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "other", "namespace": "default"}}
    )
    cluster.server_version()  # warm-up: discovery is cached per client, not counted below
    cluster.get("Deployment", "default", "other")
    kube_emulator.reset_log()

    deployments = cluster.list_managed("Deployment", f"{MANAGED_BY_LABEL}=saas-portal")

    assert len(deployments) == instances
    assert {d["metadata"]["namespace"] for d in deployments} == {f"smile-{i}" for i in range(instances)}
    assert [(r.method, r.path) for r in kube_emulator.requests] == [("GET", "/apis/apps/v1/deployments")]


def test_list_returns_typed_items_and_a_version_to_watch_from(cluster, kube_emulator, applied):
    items, version = cluster.list("ConfigMap", NS, label_selector=SELECTOR)
    assert [(i["apiVersion"], i["kind"], i["metadata"]["name"]) for i in items] == [("v1", "ConfigMap", "settings")]
    assert version == str(kube_emulator.store.resource_version)
    named, _ = cluster.list("Namespace", None, field_selector=f"metadata.name={NS}")
    assert [n["metadata"]["name"] for n in named] == [NS]


def test_watch_yields_changes_after_a_listed_version(cluster, kube_emulator, applied):
    _, version = cluster.list("Deployment", NS, label_selector=SELECTOR)
    kube_emulator.set_status("apps/v1", "Deployment", NS, "smile", {"replicas": 1})

    started = time.monotonic()
    events = cluster.watch("Deployment", NS, label_selector=SELECTOR, resource_version=version, timeout_seconds=5)
    event = next(events)
    events.close()

    assert event["type"] == "MODIFIED" and event["object"]["status"] == {"replicas": 1}
    assert time.monotonic() - started < 2


def test_a_quiet_watch_ends_at_its_timeout_even_past_the_read_timeout(cluster, applied):
    _, version = cluster.list("Job", NS)
    started = time.monotonic()
    assert list(cluster.watch("Job", NS, resource_version=version, timeout_seconds=2)) == []
    assert 1.9 < time.monotonic() - started < 3.5  # the client's read timeout is 1 s


def test_a_watch_from_a_forgotten_version_asks_for_a_new_list(cluster, kube_emulator, applied):
    kube_emulator.store._forgotten_until = kube_emulator.store.resource_version  # as if the history had rolled over
    started = time.monotonic()
    with pytest.raises(WatchExpired):
        list(cluster.watch("ConfigMap", NS, resource_version="1", timeout_seconds=5))
    assert time.monotonic() - started < 1


def test_create_if_absent_never_overwrites(cluster, kube_emulator, applied):
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta("generated"),
        "stringData": {"password": "first-value"},
    }
    assert cluster.create_if_absent(secret) is True
    secret["stringData"]["password"] = "second-value"
    assert cluster.create_if_absent(secret) is False
    stored = cluster.get("Secret", NS, "generated")
    assert base64.b64decode(stored["data"]["password"]) == b"first-value"
    kube_emulator.inject(method="POST", status=500, message="cannot store second-value")
    with pytest.raises(TransientClusterError) as error:
        cluster.create_if_absent({**secret, "metadata": meta("other")})
    assert "second-value" not in str(error.value)


def test_get_returns_none_when_missing(cluster):
    assert cluster.get("ConfigMap", "default", "absent") is None
    assert cluster.get("Namespace", None, "default")["status"]["phase"] == "Active"


def test_create_job_from_cronjob(cluster, kube_emulator):
    job_template = {
        "metadata": {"labels": {"app": "timemachine"}, "annotations": {"note": "dump"}},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "dump", "image": "tm:1"}]}}},
    }
    cronjob = kube_emulator.seed(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "timemachine", "namespace": "default"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": job_template},
        }
    )
    kube_emulator.reset_log()

    job = cluster.create_job_from_cronjob("default", "timemachine", "backup-42", {"portal.example.org/backup": "42"})

    assert job["metadata"]["labels"] == {"app": "timemachine", "portal.example.org/backup": "42"}
    assert job["metadata"]["annotations"] == {"note": "dump", "cronjob.kubernetes.io/instantiate": "manual"}
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "CronJob",
        "timemachine",
        cronjob["metadata"]["uid"],
        True,
    )
    assert job["spec"] == job_template["spec"]
    again = cluster.create_job_from_cronjob("default", "timemachine", "backup-42")  # a retry after a lost answer
    assert again["metadata"]["uid"] == job["metadata"]["uid"]
    assert kube_emulator.write_count == 1
    with pytest.raises(PermanentClusterError, match="CronJob not found"):
        cluster.create_job_from_cronjob("default", "absent", "backup-43")


def test_patch_status_plays_the_controller(cluster, kube_emulator, applied):
    before = cluster.get("Deployment", NS, "smile")
    status = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}

    patched = cluster.patch_status("Deployment", NS, "smile", status)

    assert patched["status"] == status
    assert patched["spec"] == before["spec"] and patched["metadata"]["generation"] == 1
    # Status is not the portal's field: applying the same manifests again writes nothing.
    writes = kube_emulator.write_count
    assert cluster.apply(instance_manifests(), known_versions=applied).summary() == "1 applied, 7 unchanged"
    assert kube_emulator.write_count == writes
    assert cluster.get("Deployment", NS, "smile")["status"] == status


def test_manifests_are_not_modified(cluster):
    manifests = instance_manifests()
    original = copy.deepcopy(manifests)
    cluster.apply(manifests)
    assert manifests == original


# --- answers the emulator never gives ------------------------------------------------------------------------


@pytest.fixture
def odd_server():
    """A bare HTTP server with fixed answers: a watch stream with blank keep-alive lines, an apply answered with
    something that is not JSON (a proxy's error page, say)."""
    watch_body = (
        b'\n{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n\n'
        b'{"type":"MODIFIED","object":{"metadata":{"name":"a"}}}\n'
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self.answer(watch_body, "application/json")

        def do_PATCH(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.answer(b"<html>Bad gateway</html>", "text/html")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_watch_skips_blank_lines(odd_server):
    with ClusterClient.for_url(odd_server, timeout=(1, 1)) as cluster:
        events = list(cluster.watch("ConfigMap", NS, timeout_seconds=1))
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED"]


def test_an_apply_answered_with_something_else_than_json_is_a_cluster_error(odd_server):
    with ClusterClient.for_url(odd_server, timeout=(1, 1)) as cluster, pytest.raises(TransientClusterError) as error:
        cluster.apply(instance_manifests()[:1])
    assert error.value.message.startswith("apply ") and "JSONDecodeError" in error.value.message
