"""Contract tests of the Kubernetes API emulator, through the official client, raw HTTP and kubectl.

These tests are what tells us the emulator is faithful: each one exercises an API behaviour the portal relies on
with a real client over real HTTP and checks what a real API server would answer.
"""

import json
import os
import shutil
import subprocess
import threading
import time

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from kubesim import KubernetesEmulator

MERGE = "application/merge-patch+json"


def raw(emulator, method, path, body=None, content_type="application/json", headers=None):
    """One HTTP request without the client's help: (status, headers, decoded JSON or text)."""
    data = body if isinstance(body, (bytes, type(None))) else (body if isinstance(body, str) else json.dumps(body))
    response = urllib3.request(
        method, emulator.url + path, body=data, headers={"Content-Type": content_type, **(headers or {})}, timeout=5
    )
    try:
        payload = json.loads(response.data)
    except ValueError:
        payload = response.data.decode()
    return response.status, response.headers, payload


def deployment(name, namespace, *, labels=None, replicas=1, image="registry.example.org/smile:1.2.4"):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def configmap(name, namespace, data=None, labels=None):
    metadata = {"name": name, "namespace": namespace, **({"labels": labels} if labels else {})}
    return {"metadata": metadata, "data": data or {"k": "v"}}


@pytest.fixture
def core(kube_api_client):
    return client.CoreV1Api(kube_api_client)


@pytest.fixture
def apps(kube_api_client):
    return client.AppsV1Api(kube_api_client)


@pytest.fixture
def dynamic(kube_api_client, tmp_path):
    return DynamicClient(kube_api_client, cache_file=str(tmp_path / "discovery.json"))


@pytest.fixture
def ns(core):
    core.create_namespace({"metadata": {"name": "smile-unistra"}})
    return "smile-unistra"


def status_of(error: ApiException) -> dict:
    return json.loads(error.body)


# --- discovery -------------------------------------------------------------------------------------------------


def test_version_and_discovery_documents(kube_api_client):
    assert client.VersionApi(kube_api_client).get_code().git_version == "v1.32.0-kubesim"
    assert client.CoreApi(kube_api_client).get_api_versions().versions == ["v1"]
    groups = {g.name for g in client.ApisApi(kube_api_client).get_api_versions().groups}
    assert {"apps", "batch", "networking.k8s.io", "policy", "rbac.authorization.k8s.io"} <= groups

    core_resources = client.CoreV1Api(kube_api_client).get_api_resources()
    assert core_resources.group_version == "v1"
    by_name = {r.name: r for r in core_resources.resources}
    assert by_name["namespaces"].namespaced is False
    assert by_name["configmaps"].namespaced is True and by_name["configmaps"].kind == "ConfigMap"
    assert {"create", "get", "list", "patch", "update", "delete", "watch"} <= set(by_name["secrets"].verbs)

    apps_resources = {r.name: r for r in client.AppsV1Api(kube_api_client).get_api_resources().resources}
    assert apps_resources["deployments/status"].verbs == ["get", "patch", "update"]
    batch_resources = {r.name for r in client.BatchV1Api(kube_api_client).get_api_resources().resources}
    assert {"jobs", "jobs/status", "cronjobs", "cronjobs/status"} <= batch_resources


@pytest.mark.parametrize(
    ("api_version", "kind", "namespaced"),
    [
        ("v1", "Namespace", False),
        ("v1", "ConfigMap", True),
        ("v1", "Secret", True),
        ("v1", "Service", True),
        ("v1", "PersistentVolumeClaim", True),
        ("v1", "ResourceQuota", True),
        ("v1", "LimitRange", True),
        ("v1", "ServiceAccount", True),
        ("v1", "Pod", True),
        ("v1", "Event", True),
        ("apps/v1", "Deployment", True),
        ("apps/v1", "StatefulSet", True),
        ("apps/v1", "ReplicaSet", True),
        ("batch/v1", "Job", True),
        ("batch/v1", "CronJob", True),
        ("networking.k8s.io/v1", "Ingress", True),
        ("networking.k8s.io/v1", "NetworkPolicy", True),
        ("policy/v1", "PodDisruptionBudget", True),
        ("rbac.authorization.k8s.io/v1", "Role", True),
        ("rbac.authorization.k8s.io/v1", "RoleBinding", True),
    ],
)
def test_dynamic_client_discovers_each_kind(dynamic, api_version, kind, namespaced):
    resource = dynamic.resources.get(api_version=api_version, kind=kind)
    assert resource.namespaced is namespaced
    assert resource.group_version == api_version


def test_dynamic_client_sees_status_subresources(dynamic):
    for api_version, kind in [("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("batch/v1", "Job")]:
        assert "status" in dynamic.resources.get(api_version=api_version, kind=kind).subresources
    assert "status" not in dynamic.resources.get(api_version="v1", kind="ConfigMap").subresources


# --- namespaces ------------------------------------------------------------------------------------------------


def test_namespace_create_get_list_delete(core):
    created = core.create_namespace({"metadata": {"name": "smile-unicaen", "labels": {"team": "caen"}}})
    assert created.status.phase == "Active"
    assert created.metadata.uid and created.metadata.creation_timestamp
    assert core.read_namespace("smile-unicaen").metadata.labels == {"team": "caen"}
    assert "smile-unicaen" in {n.metadata.name for n in core.list_namespace().items}
    assert [n.metadata.name for n in core.list_namespace(label_selector="team=caen").items] == ["smile-unicaen"]

    with pytest.raises(ApiException) as duplicate:
        core.create_namespace({"metadata": {"name": "smile-unicaen"}})
    assert duplicate.value.status == 409
    body = status_of(duplicate.value)
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "AlreadyExists", 409)
    assert body["message"] == 'namespaces "smile-unicaen" already exists'

    core.delete_namespace("smile-unicaen")
    with pytest.raises(ApiException) as missing:
        core.read_namespace("smile-unicaen")
    assert missing.value.status == 404 and status_of(missing.value)["reason"] == "NotFound"


def test_deleting_a_namespace_deletes_its_contents_only(kube_emulator, core, apps, ns):
    core.create_namespace({"metadata": {"name": "other"}})
    core.create_namespaced_config_map(ns, configmap("settings", ns))
    apps.create_namespaced_deployment(ns, deployment("web", ns))
    core.create_namespaced_config_map("other", configmap("settings", "other"))

    core.delete_namespace(ns)

    assert apps.list_namespaced_deployment(ns).items == []
    assert core.list_namespaced_config_map(ns).items == []
    assert core.read_namespaced_config_map("settings", "other").data == {"k": "v"}
    # Nothing of the namespace stays in the store's indexes (a long-lived sandbox sees many come and go).
    assert ns not in kube_emulator.store._by_namespace
    assert all(ns not in by_namespace for by_namespace in kube_emulator.store._by_type.values())


def test_namespace_terminates_for_a_while_before_disappearing():
    with KubernetesEmulator(namespace_termination_seconds=0.3) as emulator:
        configuration = client.Configuration()
        configuration.host = emulator.url
        with client.ApiClient(configuration) as api_client:
            core = client.CoreV1Api(api_client)
            core.create_namespace({"metadata": {"name": "doomed"}})
            core.create_namespaced_config_map("doomed", configmap("settings", "doomed"))
            listed = core.list_namespace()

            core.delete_namespace("doomed")
            terminating = core.read_namespace("doomed")
            assert terminating.status.phase == "Terminating" and terminating.metadata.deletion_timestamp
            with pytest.raises(ApiException) as forbidden:
                core.create_namespaced_config_map("doomed", configmap("late", "doomed"))
            assert forbidden.value.status == 403 and "being terminated" in status_of(forbidden.value)["message"]
            with pytest.raises(ApiException) as again:
                core.create_namespace({"metadata": {"name": "doomed"}})
            assert again.value.status == 409

            started = time.monotonic()
            events = watch.Watch().stream(
                core.list_namespace,
                field_selector="metadata.name=doomed",
                resource_version=listed.metadata.resource_version,
                timeout_seconds=3,
            )
            seen = []
            for event in events:
                seen.append(event["type"])
                if event["type"] == "DELETED":
                    break
            assert seen == ["MODIFIED", "DELETED"]
            assert time.monotonic() - started < 2
            with pytest.raises(ApiException):
                core.read_namespaced_config_map("settings", "doomed")


def test_objects_need_an_existing_namespace(core):
    with pytest.raises(ApiException) as missing:
        core.create_namespaced_config_map("nowhere", configmap("settings", "nowhere"))
    assert missing.value.status == 404
    assert status_of(missing.value)["message"] == 'namespaces "nowhere" not found'


# --- create, read, list, replace, delete -----------------------------------------------------------------------


def test_create_read_delete_with_server_metadata(core, ns):
    created, code, _ = core.create_namespaced_config_map_with_http_info(ns, configmap("settings", ns))
    assert code == 201
    assert created.metadata.namespace == ns
    assert created.metadata.uid and created.metadata.creation_timestamp
    assert created.metadata.resource_version.isdigit() and created.metadata.generation == 1
    entry = created.metadata.managed_fields[0]
    assert (entry.operation, entry.fields_type) == ("Update", "FieldsV1")
    assert entry.fields_v1 == {"f:data": {"f:k": {}}}

    read = core.read_namespaced_config_map("settings", ns)
    assert read.metadata.uid == created.metadata.uid and read.data == {"k": "v"}

    _, code, _ = core.delete_namespaced_config_map_with_http_info("settings", ns, propagation_policy="Foreground")
    assert code == 200
    with pytest.raises(ApiException) as gone:
        core.delete_namespaced_config_map("settings", ns)
    assert gone.value.status == 404
    assert status_of(gone.value)["message"] == 'configmaps "settings" not found'


def test_resource_versions_are_a_global_counter(core, ns):
    first = core.create_namespaced_config_map(ns, configmap("a", ns)).metadata.resource_version
    second = core.create_namespaced_config_map(ns, configmap("b", ns)).metadata.resource_version
    listed = core.list_namespaced_config_map(ns)
    assert int(first) < int(second) == int(listed.metadata.resource_version)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=smile", {"web", "worker", "db"}),
        ("app==smile,tier=front", {"web"}),
        ("tier!=front", {"worker", "db", "other"}),
        ("tier in (front, back)", {"web", "worker"}),
        ("tier notin (front)", {"worker", "db", "other"}),
        ("tier", {"web", "worker"}),
        ("!tier", {"db", "other"}),
        ("app=smile,!tier", {"db"}),
        ("", {"web", "worker", "db", "other"}),
    ],
)
def test_label_selectors(core, ns, selector, expected):
    labels = {
        "web": {"app": "smile", "tier": "front"},
        "worker": {"app": "smile", "tier": "back"},
        "db": {"app": "smile"},
        "other": {"app": "moodle"},
    }
    for name, object_labels in labels.items():
        core.create_namespaced_config_map(ns, configmap(name, ns, labels=object_labels))
    assert {c.metadata.name for c in core.list_namespaced_config_map(ns, label_selector=selector).items} == expected


def test_malformed_selectors_are_bad_requests(core, ns):
    for kwargs in ({"label_selector": "tier in (front"}, {"field_selector": "spec.replicas=2"}):
        with pytest.raises(ApiException) as bad:
            core.list_namespaced_config_map(ns, **kwargs)
        assert bad.value.status == 400 and status_of(bad.value)["reason"] == "BadRequest"


def test_field_selectors_and_cluster_wide_lists(kube_emulator, core, apps, ns):
    core.create_namespace({"metadata": {"name": "smile-unicaen"}})
    apps.create_namespaced_deployment(ns, deployment("web", ns, labels={"portal": "yes"}))
    apps.create_namespaced_deployment("smile-unicaen", deployment("web", "smile-unicaen", labels={"portal": "yes"}))
    apps.create_namespaced_deployment("smile-unicaen", deployment("tool", "smile-unicaen", labels={"portal": "no"}))

    everywhere = apps.list_deployment_for_all_namespaces(label_selector="portal=yes")
    assert {(d.metadata.namespace, d.metadata.name) for d in everywhere.items} == {
        (ns, "web"),
        ("smile-unicaen", "web"),
    }
    by_namespace = apps.list_deployment_for_all_namespaces(field_selector="metadata.namespace=smile-unicaen")
    assert {d.metadata.name for d in by_namespace.items} == {"web", "tool"}
    not_web = apps.list_deployment_for_all_namespaces(field_selector="metadata.name!=web")
    assert [d.metadata.name for d in not_web.items] == ["tool"]

    status, _, body = raw(kube_emulator, "GET", "/apis/apps/v1/deployments?labelSelector=portal%3Dyes")
    assert status == 200
    assert (body["kind"], body["apiVersion"]) == ("DeploymentList", "apps/v1")
    assert body["metadata"]["resourceVersion"].isdigit()
    assert "kind" not in body["items"][0] and "apiVersion" not in body["items"][0]  # as a real API server


def test_replace_checks_the_resource_version(core, ns):
    created = core.create_namespaced_config_map(ns, configmap("settings", ns))
    created.data = {"k": "new"}
    replaced = core.replace_namespaced_config_map("settings", ns, created)
    assert replaced.data == {"k": "new"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)

    created.data = {"k": "stale"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("settings", ns, created)
    assert conflict.value.status == 409 and status_of(conflict.value)["reason"] == "Conflict"
    assert core.read_namespaced_config_map("settings", ns).data == {"k": "new"}

    with pytest.raises(ApiException) as missing:
        core.replace_namespaced_config_map("absent", ns, configmap("absent", ns))
    assert missing.value.status == 404


def test_merge_json_and_strategic_patches(core, apps, ns):
    core.create_namespaced_config_map(ns, configmap("settings", ns, data={"a": "1", "b": "2"}))

    merged = core.patch_namespaced_config_map("settings", ns, {"data": {"a": None, "c": "3"}}, _content_type=MERGE)
    assert merged.data == {"b": "2", "c": "3"}

    operations = [
        {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
        {"op": "replace", "path": "/data/b", "value": "two"},
        {"op": "remove", "path": "/data/c"},
    ]
    patched = core.patch_namespaced_config_map("settings", ns, operations)  # a list goes as a JSON patch
    assert patched.data == {"b": "two"} and patched.metadata.labels == {"x": "y"}
    with pytest.raises(ApiException) as failed_test:
        core.patch_namespaced_config_map("settings", ns, [{"op": "test", "path": "/data/b", "value": "nope"}])
    assert failed_test.value.status == 422

    # A dict goes as a strategic merge patch, treated as a merge patch: directives are dropped, lists replaced.
    apps.create_namespaced_deployment(ns, deployment("web", ns))
    containers = [{"name": "app", "image": "smile:2"}, {"name": "sidecar", "image": "proxy:1"}]
    strategic = {
        "spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "app"}], "containers": containers}}}
    }
    updated = apps.patch_namespaced_deployment("web", ns, strategic)
    assert [(c.name, c.image) for c in updated.spec.template.spec.containers] == [
        ("app", "smile:2"),
        ("sidecar", "proxy:1"),
    ]


def test_bad_requests_get_status_bodies_and_the_server_survives(kube_emulator, core, ns):
    path = f"/api/v1/namespaces/{ns}/configmaps"
    cases = [
        ("POST", path, b"{not json", "application/json", 400, "BadRequest"),
        ("POST", path, b"[1, 2]", "application/json", 400, "BadRequest"),
        ("POST", path, {"metadata": 3}, "application/json", 400, "BadRequest"),
        ("POST", path, {"metadata": {"name": "Not_A_Name"}}, "application/json", 422, "Invalid"),
        ("POST", path, {"metadata": {}}, "application/json", 422, "Invalid"),
        ("POST", path, {"metadata": {"name": "x", "namespace": "elsewhere"}}, "application/json", 400, "BadRequest"),
        ("POST", "/api/v1/configmaps", {"metadata": {"name": "x"}}, "application/json", 405, "MethodNotAllowed"),
        ("GET", "/apis/example.org/v1/widgets", None, "application/json", 404, "NotFound"),
        ("PATCH", f"{path}/absent", {"data": {}}, MERGE, 404, "NotFound"),
        ("POST", path, b"k8s\x00", "application/vnd.kubernetes.protobuf", 415, "UnsupportedMediaType"),
    ]
    for method, url, body, content_type, code, reason in cases:
        status, headers, payload = raw(kube_emulator, method, url, body, content_type)
        assert (status, payload["kind"], payload["reason"], payload["code"]) == (code, "Status", reason, code), url
        assert headers["Content-Type"] == "application/json"
    core.create_namespaced_config_map(ns, configmap("settings", ns))
    status, _, payload = raw(kube_emulator, "PATCH", f"{path}/settings", {"data": {}}, "text/plain")
    assert (status, payload["reason"]) == (415, "UnsupportedMediaType")
    status, _, payload = raw(kube_emulator, "PATCH", f"{path}/settings", [1], MERGE)
    assert status == 400
    assert core.read_namespaced_config_map("settings", ns).data == {"k": "v"}


# --- generation, no-op writes, status subresource --------------------------------------------------------------


def test_generation_follows_spec_changes_only(apps, ns):
    created = apps.create_namespaced_deployment(ns, deployment("web", ns))
    assert created.metadata.generation == 1
    scaled = apps.patch_namespaced_deployment("web", ns, {"spec": {"replicas": 3}})
    assert scaled.metadata.generation == 2
    labelled = apps.patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"extra": "1"}}})
    assert labelled.metadata.generation == 2
    assert int(labelled.metadata.resource_version) > int(scaled.metadata.resource_version)
    observed = apps.patch_namespaced_deployment_status("web", ns, {"status": {"observedGeneration": 2}})
    assert observed.metadata.generation == 2 and observed.status.observed_generation == 2


def test_writes_that_change_nothing_are_not_writes(kube_emulator, core, apps, ns):
    created = apps.create_namespaced_deployment(ns, deployment("web", ns))
    before = kube_emulator.write_count

    same = apps.patch_namespaced_deployment("web", ns, {"spec": {"replicas": 1}})
    replaced = apps.replace_namespaced_deployment("web", ns, apps.read_namespaced_deployment("web", ns))
    assert same.metadata.resource_version == replaced.metadata.resource_version == created.metadata.resource_version
    assert kube_emulator.write_count == before

    apps.patch_namespaced_deployment("web", ns, {"spec": {"replicas": 2}})
    assert kube_emulator.write_count == before + 1


def test_status_subresource_is_separate_from_the_object(apps, ns):
    body = deployment("web", ns)
    body["status"] = {"replicas": 5}
    created = apps.create_namespaced_deployment(ns, body)
    assert created.status.replicas == 5  # a create keeps the posted status

    ignored = apps.patch_namespaced_deployment("web", ns, {"status": {"replicas": 9}, "spec": {"replicas": 2}})
    assert (ignored.spec.replicas, ignored.status.replicas) == (2, 5)

    status_only = apps.patch_namespaced_deployment_status(
        "web", ns, {"spec": {"replicas": 7}, "metadata": {"labels": {"hacked": "yes"}}, "status": {"replicas": 2}}
    )
    assert (status_only.spec.replicas, status_only.status.replicas) == (2, 2)
    assert "hacked" not in status_only.metadata.labels

    current = apps.read_namespaced_deployment_status("web", ns)
    current.status.ready_replicas = 2
    assert apps.replace_namespaced_deployment_status("web", ns, current).status.ready_replicas == 2


def test_secret_string_data_is_stored_encoded(kube_emulator, core, ns):
    secret = {"metadata": {"name": "db", "namespace": ns}, "stringData": {"password": "s3cret"}, "data": {"u": "YQ=="}}
    core.create_namespaced_secret(ns, secret)
    stored = core.read_namespaced_secret("db", ns)
    assert stored.data == {"u": "YQ==", "password": "czNjcmV0"} and stored.string_data is None
    writes = kube_emulator.write_count
    core.patch_namespaced_secret("db", ns, {"stringData": {"password": "s3cret"}})
    assert kube_emulator.write_count == writes  # the same value again is no change


# --- server-side apply -----------------------------------------------------------------------------------------


def test_server_side_apply_upserts(kube_emulator, dynamic, ns):
    deployments = dynamic.resources.get(api_version="apps/v1", kind="Deployment")
    manifest = deployment("web", ns, replicas=2)
    created = deployments.server_side_apply(body=manifest, field_manager="saas-portal")
    assert created.metadata.generation == 1 and created.spec.replicas == 2
    assert kube_emulator.requests[-1].status == 201

    writes = kube_emulator.write_count
    again = deployments.server_side_apply(body=manifest, field_manager="saas-portal")
    assert again.metadata.resourceVersion == created.metadata.resourceVersion
    assert kube_emulator.write_count == writes and kube_emulator.requests[-1].status == 200

    manifest["spec"]["replicas"] = 3
    updated = deployments.server_side_apply(body=manifest, field_manager="saas-portal")
    assert updated.spec.replicas == 3 and updated.metadata.generation == 2
    entry = updated.to_dict()["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"]) == ("saas-portal", "Apply")
    assert entry["fieldsV1"]["f:spec"]["f:replicas"] == {}


def test_server_side_apply_requires_a_field_manager(kube_emulator, ns):
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/web"
    status, _, body = raw(kube_emulator, "PATCH", path, deployment("web", ns), "application/apply-patch+yaml")
    assert (status, body["reason"]) == (422, "Invalid")
    assert "fieldManager" in body["message"]


def test_server_side_apply_accepts_yaml(kube_emulator, core, ns):
    manifest = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {ns}\ndata:\n  k: v\n"
    path = f"/api/v1/namespaces/{ns}/configmaps/settings?fieldManager=ops&force=true"
    status, _, body = raw(kube_emulator, "PATCH", path, manifest, "application/apply-patch+yaml")
    assert status == 201 and body["data"] == {"k": "v"}
    assert core.read_namespaced_config_map("settings", ns).data == {"k": "v"}


def test_server_side_apply_removes_fields_the_manager_dropped(dynamic, core, ns):
    configmaps = dynamic.resources.get(api_version="v1", kind="ConfigMap")
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": ns, "labels": {"a": "1", "b": "2"}},
        "data": {"kept": "1", "dropped": "2"},
    }
    configmaps.server_side_apply(body=manifest, field_manager="saas-portal")
    # Another writer adds a field of its own: dropping fields from the manifest must not remove it.
    core.patch_namespaced_config_map("settings", ns, {"data": {"theirs": "x"}}, _content_type=MERGE)

    del manifest["data"]["dropped"]
    del manifest["metadata"]["labels"]["b"]
    configmaps.server_side_apply(body=manifest, field_manager="saas-portal")

    current = core.read_namespaced_config_map("settings", ns)
    assert current.data == {"kept": "1", "theirs": "x"}
    assert current.metadata.labels == {"a": "1"}
    managers = {(m.manager, m.operation) for m in current.metadata.managed_fields}
    assert managers == {("saas-portal", "Apply"), ("OpenAPI-Generator", "Update")}


def test_server_side_apply_conflicts_unless_forced(dynamic, ns):
    deployments = dynamic.resources.get(api_version="apps/v1", kind="Deployment")
    deployments.server_side_apply(body=deployment("web", ns, replicas=2), field_manager="saas-portal")

    with pytest.raises(ApiException) as conflict:
        deployments.server_side_apply(body=deployment("web", ns, replicas=5), field_manager="autoscaler")
    assert conflict.value.status == 409
    message = status_of(conflict.value)["message"]
    assert 'conflict with "saas-portal"' in message and ".spec.replicas" in message

    forced = deployments.server_side_apply(
        body=deployment("web", ns, replicas=5), field_manager="autoscaler", force_conflicts=True
    )
    assert forced.spec.replicas == 5
    # The portal lost ownership of replicas: its next apply without the field leaves it alone.
    manifest = deployment("web", ns)
    del manifest["spec"]["replicas"]
    assert deployments.server_side_apply(body=manifest, field_manager="saas-portal").spec.replicas == 5


def test_apply_to_the_status_subresource(dynamic, apps, ns):
    deployments = dynamic.resources.get(api_version="apps/v1", kind="Deployment")
    deployments.server_side_apply(body=deployment("web", ns), field_manager="saas-portal")
    status = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns}}
    status["status"] = {"replicas": 1, "updatedReplicas": 1}
    deployments.status.server_side_apply(body=status, field_manager="controller")

    current = apps.read_namespaced_deployment("web", ns)
    assert current.status.updated_replicas == 1 and current.metadata.generation == 1
    subresources = {(m.manager, m.subresource) for m in current.metadata.managed_fields}
    assert subresources == {("saas-portal", None), ("controller", "status")}


# --- watch -----------------------------------------------------------------------------------------------------


def test_watch_from_a_resource_version_then_time_out(core, ns):
    since = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, configmap("settings", ns))
    core.patch_namespaced_config_map("settings", ns, {"data": {"k": "2"}})
    core.delete_namespaced_config_map("settings", ns)

    started = time.monotonic()
    events = list(watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=since, timeout_seconds=1))
    elapsed = time.monotonic() - started
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "settings"),
        ("MODIFIED", "settings"),
        ("DELETED", "settings"),
    ]
    assert events[1]["object"].data == {"k": "2"}
    assert 0.9 < elapsed < 3


def test_watch_filters_by_namespace_and_labels(apps, core, ns):
    core.create_namespace({"metadata": {"name": "other"}})
    since = apps.list_deployment_for_all_namespaces().metadata.resource_version
    apps.create_namespaced_deployment(ns, deployment("web", ns, labels={"portal": "yes"}))
    apps.create_namespaced_deployment("other", deployment("web", "other", labels={"portal": "yes"}))
    apps.create_namespaced_deployment(ns, deployment("tool", ns, labels={"portal": "no"}))
    apps.patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"portal": "no"}}})  # leaves the selection

    events = watch.Watch().stream(
        apps.list_namespaced_deployment, ns, label_selector="portal=yes", resource_version=since, timeout_seconds=1
    )
    assert [(e["type"], e["object"].metadata.namespace, e["object"].metadata.name) for e in events] == [
        ("ADDED", ns, "web"),
        ("DELETED", ns, "web"),
    ]


def test_watch_sees_live_changes_and_starts_with_current_objects(core, ns):
    core.create_namespaced_config_map(ns, configmap("existing", ns))
    timer = threading.Timer(0.2, core.create_namespaced_config_map, [ns, configmap("later", ns)])
    timer.start()
    watcher = watch.Watch()
    seen = []
    started = time.monotonic()
    for event in watcher.stream(core.list_namespaced_config_map, ns, timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 2:
            watcher.stop()
    timer.join()
    assert seen == [("ADDED", "existing"), ("ADDED", "later")]
    assert time.monotonic() - started < 2


def test_watch_is_a_chunked_json_stream(kube_emulator, core, ns):
    core.create_namespaced_config_map(ns, configmap("settings", ns))
    url = f"{kube_emulator.url}/api/v1/namespaces/{ns}/configmaps?watch=true"
    response = urllib3.request("GET", url, timeout=5, preload_content=False)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Transfer-Encoding"] == "chunked"
    first_line = next(response.read_chunked())  # one event per chunk, one JSON document per line
    event = json.loads(first_line)
    assert first_line.endswith(b"\n") and (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "settings")
    response.close()


def test_watch_from_a_forgotten_version_reports_gone():
    ns = "default"
    with KubernetesEmulator(history=3) as emulator:
        for index in range(5):
            emulator.seed({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{index}", "namespace": ns}})
        response = urllib3.request("GET", f"{emulator.url}/api/v1/configmaps?watch=1&resourceVersion=1", timeout=5)
        event = json.loads(response.data.splitlines()[0])
        assert event["type"] == "ERROR" and event["object"]["code"] == 410


def test_stopping_the_emulator_ends_open_watches():
    emulator = KubernetesEmulator()
    configuration = client.Configuration()
    configuration.host = emulator.start()
    with client.ApiClient(configuration) as api_client:
        core = client.CoreV1Api(api_client)
        ended = threading.Event()

        def watch_forever():
            for _ in watch.Watch().stream(core.list_namespace, resource_version="1", timeout_seconds=60):
                pass
            ended.set()

        watcher = threading.Thread(target=watch_forever, daemon=True)
        watcher.start()
        deadline = time.monotonic() + 3
        while not emulator.requests_matching("GET", "^/api/v1/namespaces$") and time.monotonic() < deadline:
            time.sleep(0.01)  # until the watch is connected
        started = time.monotonic()
        emulator.stop()
        assert ended.wait(3)
        assert time.monotonic() - started < 3


# --- fault injection and request log ---------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "reason"), [(500, "InternalError"), (409, "Conflict"), (429, "TooManyRequests")])
def test_injected_errors(kube_emulator, core, ns, code, reason):
    kube_emulator.inject(method="POST", path_regex=r"/configmaps$", status=code, times=1, retry_after=7)
    with pytest.raises(ApiException) as injected:
        core.create_namespaced_config_map(ns, configmap("settings", ns))
    assert injected.value.status == code
    assert status_of(injected.value)["reason"] == reason
    assert injected.value.headers["Retry-After"] == "7"
    assert kube_emulator.get_object("v1", "ConfigMap", ns, "settings") is None
    core.create_namespaced_config_map(ns, configmap("settings", ns))  # only once
    core.list_namespace()  # other paths were never affected


def test_injected_delay_trips_the_client_timeout(kube_emulator, core, ns):
    kube_emulator.inject_delay(5, method="POST", path_regex="/configmaps")  # POSTs are not retried by urllib3
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        core.create_namespaced_config_map(ns, configmap("settings", ns), _request_timeout=(1, 0.5))
    assert time.monotonic() - started < 2
    assert core.list_namespaced_config_map(ns, _request_timeout=(1, 2)).items == []


def test_request_log_and_write_count(kube_emulator, core, ns):
    kube_emulator.reset_log()
    core.create_namespaced_config_map(ns, configmap("settings", ns))  # kubernetes 36 always sends a Content-Type
    core.patch_namespaced_config_map("settings", ns, {"data": {"k": "v"}}, _content_type=MERGE)  # no change
    core.read_namespaced_config_map("settings", ns)
    assert [(r.method, r.path, r.content_type, r.status) for r in kube_emulator.requests] == [
        ("POST", f"/api/v1/namespaces/{ns}/configmaps", "application/json", 201),
        ("PATCH", f"/api/v1/namespaces/{ns}/configmaps/settings", MERGE, 200),
        ("GET", f"/api/v1/namespaces/{ns}/configmaps/settings", "application/json", 200),
    ]
    assert kube_emulator.write_count == 1
    assert len(kube_emulator.requests_matching(method="PATCH")) == 1


# --- kubectl ---------------------------------------------------------------------------------------------------

MANIFESTS = """
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo, labels: {app: web, tier: front}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "registry.example.org/smile:1.2.4"}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: demo, labels: {app: web}}
data: {LANG: fr}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated, namespace: demo, labels: {app: other}}
"""


@pytest.fixture
def kubectl(kube_emulator, tmp_path):
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(kube_emulator.kubeconfig())
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}

    def run(*args, check=True):
        base = ["kubectl", f"--server={kube_emulator.url}", "--insecure-skip-tls-verify", f"--cache-dir={tmp_path}"]
        result = subprocess.run([*base, *args], env=env, capture_output=True, text=True, timeout=30)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    return run


def test_kubectl_server_side_apply_get_and_rollout_status(kube_emulator, kubectl, apps, tmp_path):
    manifests = tmp_path / "manifests.yaml"
    manifests.write_text(MANIFESTS)
    applied = kubectl("apply", "--server-side", "--field-manager=test", "-f", str(manifests))
    assert applied.stdout.split("\n")[:2] == [
        "namespace/demo serverside-applied",
        "deployment.apps/web serverside-applied",
    ]
    deployment_object = apps.read_namespaced_deployment("web", "demo")
    assert deployment_object.spec.replicas == 2
    assert deployment_object.metadata.managed_fields[0].manager == "test"

    writes = kube_emulator.write_count
    kubectl("apply", "--server-side", "--field-manager=test", "-f", str(manifests))
    assert kube_emulator.write_count == writes  # kubectl re-apply of the same manifests writes nothing

    listed = kubectl("get", "deployments,configmaps", "-n", "demo", "-l", "app=web", "-o", "name")
    assert listed.stdout.split() == ["deployment.apps/web", "configmap/settings"]
    table = kubectl("get", "deployments", "--all-namespaces", "-l", "tier in (front)")
    assert table.stdout.split("\n")[1].split()[:2] == ["demo", "web"]

    waiting = kubectl("rollout", "status", "deployment/web", "-n", "demo", "--timeout=1s", check=False)
    assert waiting.returncode != 0
    finished = {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2}
    apps.patch_namespaced_deployment_status("web", "demo", {"status": {**finished, "availableReplicas": 2}})
    rollout = kubectl("rollout", "status", "deployment/web", "-n", "demo", "--timeout=5s")
    assert 'deployment "web" successfully rolled out' in rollout.stdout


def test_kubectl_discovery_and_namespace_deletion(kube_emulator, kubectl, tmp_path):
    resources = kubectl("api-resources", "--api-group=apps", "-o", "name").stdout.split()
    assert {"deployments.apps", "statefulsets.apps", "replicasets.apps"} <= set(resources)
    manifests = tmp_path / "manifests.yaml"
    manifests.write_text(MANIFESTS)
    kubectl("apply", "--server-side", "--field-manager=test", "-f", str(manifests))
    kubectl("delete", "namespace", "demo")
    assert kubectl("get", "namespaces", "-o", "name").stdout.split() == [
        "namespace/default",
        "namespace/kube-public",
        "namespace/kube-system",
    ]
    assert kube_emulator.get_object("v1", "ConfigMap", "demo", "settings") is None


def test_kubectl_typed_commands_get_a_clear_protobuf_refusal(kubectl):
    # Imperative commands such as `kubectl create namespace` send protobuf, which the emulator does not decode.
    refused = kubectl("create", "namespace", "demo", check=False)
    assert refused.returncode != 0 and "UnsupportedMediaType" in refused.stderr
