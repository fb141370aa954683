"""The host job runner: a Job's environment and volumes as the kubelet would give them, then its real command.

The resolution is tested on plain data; one test runs Jobs through the simulated controllers of a live emulator.
"""

import base64
import os
import shutil
import time

import pytest

from kubesim import SimulatedControllers
from kubesim.jobrunner import HostJobRunner, JobSetupError, materialise_volumes, prepare, resolve_env, run


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


SECRETS = {
    "db": {"data": {"password": b64("s3cr3t\n"), "user": b64("postgres")}},
    "storage": {"stringData": {"bucket": "backups", "credentials": "[default]\n"}},
}


def job(command, *, env=None, mounts=None, volumes=None, namespace="saas-smile-a", deadline=None):
    spec = {
        "restartPolicy": "Never",
        "containers": [
            {"name": "main", "image": "x", "command": command, "env": env or [], "volumeMounts": mounts or []}
        ],
        "volumes": volumes or [],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "smile-timemachine-manual-1", "namespace": namespace, "uid": "u-1"},
        "spec": {
            "backoffLimit": 0,
            **({"activeDeadlineSeconds": deadline} if deadline else {}),
            "template": {"metadata": {"labels": {"app.kubernetes.io/component": "timemachine"}}, "spec": spec},
        },
    }


POD = {"name": "smile-timemachine-manual-1-abcde", "namespace": "saas-smile-a",
       "labels": {"batch.kubernetes.io/job-name": "smile-timemachine-manual-1"}}  # fmt: skip


def test_env_from_values_fields_and_secret_keys():
    container = {
        "env": [
            {"name": "PGHOST", "value": "smile-database"},
            {"name": "URL", "value": "postgres://$(PGHOST)/x $$(PGHOST) $(UNKNOWN)"},
            {"name": "JOB_NAME",
             "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "BUCKET", "valueFrom": {"secretKeyRef": {"name": "storage", "key": "bucket"}}},
            {"name": "OPTIONAL", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}}},
        ]
    }  # fmt: skip
    assert resolve_env(container, POD, SECRETS) == {
        "PGHOST": "smile-database",
        "URL": "postgres://smile-database/x $(PGHOST) $(UNKNOWN)",
        "JOB_NAME": "smile-timemachine-manual-1",
        "POD": "smile-timemachine-manual-1-abcde",
        "NS": "saas-smile-a",
        "PASSWORD": "s3cr3t\n",
        "BUCKET": "backups",
    }


@pytest.mark.parametrize(
    ("item", "error"),
    [
        ({"secretKeyRef": {"name": "absent", "key": "k"}}, "key 'k' of Secret 'absent' not found"),
        ({"secretKeyRef": {"name": "db", "key": "nope"}}, "key 'nope' of Secret 'db' not found"),
        ({"fieldRef": {"fieldPath": "status.podIP"}}, "not supported"),
        ({"configMapKeyRef": {"name": "c", "key": "k"}}, "only value, fieldRef and secretKeyRef"),
    ],
)
def test_env_that_cannot_be_resolved_is_refused(item, error):
    with pytest.raises(JobSetupError, match=error):
        resolve_env({"env": [{"name": "X", "valueFrom": item}]}, POD, SECRETS)


def test_secret_and_empty_dir_volumes(tmp_path):
    pod = {
        "volumes": [
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "db", "secret": {"secretName": "db", "defaultMode": 0o440}},
            {"name": "picked", "secret": {"secretName": "db", "items": [{"key": "user", "path": "sub/name"}]}},
            {"name": "storage", "secret": {"secretName": "absent", "optional": True}},
        ]
    }
    container = {"volumeMounts": [{"name": v["name"], "mountPath": f"/run/{v['name']}"} for v in pod["volumes"]]}
    mounts = materialise_volumes(pod, container, SECRETS, tmp_path)
    assert set(mounts) == {"/run/tmp", "/run/db", "/run/picked", "/run/storage"}
    assert os.listdir(mounts["/run/tmp"]) == [] and os.listdir(mounts["/run/storage"]) == []
    assert sorted(os.listdir(mounts["/run/db"])) == ["password", "user"]
    with open(os.path.join(mounts["/run/db"], "password")) as file:
        assert file.read() == "s3cr3t\n"
    assert os.stat(os.path.join(mounts["/run/db"], "password")).st_mode & 0o777 == 0o440
    with open(os.path.join(mounts["/run/picked"], "sub", "name")) as file:
        assert file.read() == "postgres"
    assert all(path.startswith(str(tmp_path)) for path in mounts.values())


def test_a_required_secret_volume_that_is_absent_is_refused(tmp_path):
    pod = {"volumes": [{"name": "s", "secret": {"secretName": "absent"}}]}
    with pytest.raises(JobSetupError, match="Secret 'absent' not found"):
        materialise_volumes(pod, {"volumeMounts": [{"name": "s", "mountPath": "/s"}]}, SECRETS, tmp_path)


def test_prepare_rewrites_mount_paths_applies_overrides_and_keeps_the_host_env_out(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the portal's own key")
    the_job = job(
        ["/bin/bash", "-c", "true"],
        env=[
            {"name": "STORAGE_DIR", "value": "/run/secrets/storage"},
            {"name": "CREDENTIALS", "value": "/run/secrets/storage/credentials"},
            {"name": "LOOKALIKE", "value": "/run/secrets/storage-other"},
            {"name": "TMPDIR", "value": "/tmp"},
            {"name": "PGHOST", "value": "smile-database"},
        ],
        mounts=[{"name": "storage", "mountPath": "/run/secrets/storage"}, {"name": "tmp", "mountPath": "/tmp"}],
        volumes=[{"name": "storage", "secret": {"secretName": "storage"}}, {"name": "tmp", "emptyDir": {}}],
    )
    argv, env, workdir = prepare(
        the_job, SECRETS, {"PGHOST": "127.0.0.1", "PGDATABASE": "sandbox_{namespace}"}, path=["/opt/tools/bin"]
    )
    try:
        assert argv == ["/bin/bash", "-c", "true"]
        storage = env["STORAGE_DIR"]
        assert storage.startswith(str(workdir)) and os.path.isdir(storage)
        assert env["CREDENTIALS"] == os.path.join(storage, "credentials") and os.path.isfile(env["CREDENTIALS"])
        assert env["LOOKALIKE"] == "/run/secrets/storage-other"  # not under the mount
        assert env["TMPDIR"].startswith(str(workdir)) and os.listdir(env["TMPDIR"]) == []
        assert (env["PGHOST"], env["PGDATABASE"]) == ("127.0.0.1", "sandbox_saas-smile-a")
        assert env["PATH"].startswith("/opt/tools/bin" + os.pathsep)
        assert "AWS_SECRET_ACCESS_KEY" not in env
    finally:
        shutil.rmtree(workdir)


def test_run_kills_the_whole_process_group_at_the_deadline(tmp_path):
    marker = tmp_path / "late"
    started = time.monotonic()
    code, _, _ = run(["/bin/bash", "-c", f"(sleep 2; touch {marker}) & sleep 30"], {"PATH": "/usr/bin:/bin"},
                     tmp_path, timeout=0.5)  # fmt: skip
    assert code is None and time.monotonic() - started < 5
    time.sleep(2.5)
    assert not marker.exists()  # the background child was killed too


def wait_for_end(emulator, name, namespace="saas-smile-a", seconds=15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = (emulator.get_object("batch/v1", "Job", namespace, name) or {}).get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        if "Complete" in conditions or "Failed" in conditions:
            return conditions
        time.sleep(0.05)
    raise AssertionError(f"Job {name} did not end")


def test_jobs_run_their_real_command_through_the_simulated_controllers(kube_emulator, tmp_path):
    kube_emulator.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "saas-smile-a"}})
    kube_emulator.seed({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "saas-smile-a"},
                        "data": {"password": b64("from-the-secret")}})  # fmt: skip
    script = 'printf "%s %s %s" "$JOB_NAME" "$(cat "$DB_DIR/password")" "$PGDATABASE" > "$OUT"; echo done'
    good = job(
        ["/bin/bash", "-c", script],
        env=[
            {"name": "JOB_NAME",
             "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}}},
            {"name": "DB_DIR", "value": "/run/secrets/db"},
        ],
        mounts=[{"name": "db", "mountPath": "/run/secrets/db", "readOnly": True}],
        volumes=[{"name": "db", "secret": {"secretName": "db"}}],
    )  # fmt: skip
    bad = job(["/bin/bash", "-c", "echo progress; echo 'pg_dump: error: no such database' >&2; exit 3"])
    bad["metadata"]["name"] = "smile-timemachine-manual-2"
    missing = job(["/bin/true"], mounts=[{"name": "s", "mountPath": "/s"}],
                  volumes=[{"name": "s", "secret": {"secretName": "absent"}}])  # fmt: skip
    missing["metadata"]["name"] = "smile-timemachine-manual-3"
    output = tmp_path / "out"
    runner = HostJobRunner(kube_emulator, env={"PGDATABASE": "sandbox_{namespace}", "OUT": str(output)})
    with SimulatedControllers(kube_emulator, rollout_seconds=0, job_seconds=0, tick=0.05, job_runner=runner):
        for obj in (good, bad, missing):
            kube_emulator.seed(obj)
        assert "Complete" in wait_for_end(kube_emulator, "smile-timemachine-manual-1")
        failed = wait_for_end(kube_emulator, "smile-timemachine-manual-2")["Failed"]
        absent = wait_for_end(kube_emulator, "smile-timemachine-manual-3")["Failed"]
    assert output.read_text() == "smile-timemachine-manual-1 from-the-secret sandbox_saas-smile-a"
    assert failed["message"] == "exit code 3: pg_dump: error: no such database"
    assert absent["message"] == "Secret 'absent' not found: the pod would never start"
