"""Tenant isolation on the cluster: what one instance's namespace holds and may do, and what it never sees.

Render-level tests read manifests rendered by the real Kustomize; engine-level tests deploy instances through the
dispatcher and a real RQ worker onto the Kubernetes emulator, recording every request body the portal sends.
"""

import base64
import json
import re
import secrets
import subprocess

import pytest
import yaml
from django.db import connection

from instances import workflow
from instances.choices import BackupStatus, RequestStatus
from instances.engine import dispatcher
from instances.kube.client import ClusterClient
from instances.kube.overlay import OverlaySpec
from instances.kube.render import pod_spec, render
from instances.models import Backup, Instance, Operation
from tests.conftest import ctx
from tests.engine_fixtures import create_and_run, run_worker
from tests.instances.test_overlay import DIGEST_IMAGES, TAGGED_IMAGES

SPEC = OverlaySpec(instance="unistra", organisation="unistra", images=TAGGED_IMAGES, host="smile.unistra.fr")
# Production-like: pinned images, replicated web tier, a storage with known addresses, another ingress controller.
PINNED = OverlaySpec(
    instance="unicaen",
    organisation="unicaen",
    images=DIGEST_IMAGES,
    host="smile.unicaen.fr",
    size="large",
    ingress_controller_namespace="ingress-system",
    backup_storage_port=9000,
    backup_storage_cidrs=("192.0.2.10/32", "2001:db8::/64"),
)
# The Secrets the portal creates in a namespace, and the files each holds.
SECRET_FILES = {
    "smile-database": {"password"},
    "smile-database-superuser": {"password"},
    "smile-timemachine-s3": {"endpoint", "bucket", "prefix", "region", "credentials"},
}


@pytest.fixture(scope="module")
def rendered():
    return {"tagged": render(SPEC), "pinned": render(PINNED)}


def containers(objects):
    """(object, pod spec, container) of every container of every workload."""
    for obj in objects:
        if (pod := pod_spec(obj)) is not None:
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                yield obj, pod, container


# --- Network policies, flow by flow -------------------------------------------------------------------------


def pods(*components: str) -> dict:
    """The selector of the instance's pods of these components."""
    if len(components) > 1:
        return {"matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In", "values": [*components]}]}
    return {"matchLabels": {"app.kubernetes.io/name": "smile", "app.kubernetes.io/component": components[0]}}


def tcp(port: int) -> list[dict]:
    return [{"protocol": "TCP", "port": port}]


def controller(namespace: str) -> dict:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


CLUSTER_DNS = {**controller("kube-system"), "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]

# policy -> (pods it selects, [(from, ports)] allowed in, [(to, ports)] allowed out). None instead of a list: the
# policy does not govern that direction. None instead of peers: any address (the storage, its addresses unknown).
NETWORK_POLICIES = {
    "default-deny": ({}, [], []),
    "allow-dns": (pods("core", "nginx", "timemachine"), None, [([CLUSTER_DNS], DNS_PORTS)]),
    "smile-nginx": (
        pods("nginx"),
        [([controller("ingress-nginx")], tcp(8080))],
        [([{"podSelector": pods("core")}], tcp(9000))],
    ),
    "smile-core": (
        pods("core"),
        [([{"podSelector": pods("nginx")}], tcp(9000))],
        [([{"podSelector": pods("database")}], tcp(5432)), ([{"podSelector": pods("memcached")}], tcp(11211))],
    ),
    "smile-database": (
        pods("database"),
        [([{"podSelector": pods("core")}, {"podSelector": pods("timemachine")}], tcp(5432))],
        [],
    ),
    "smile-memcached": (pods("memcached"), [([{"podSelector": pods("core")}], tcp(11211))], []),
    "smile-timemachine": (
        pods("timemachine"),
        [],
        [([{"podSelector": pods("database")}], tcp(5432)), (None, tcp(443))],
    ),
}


def policy_spec(selects: dict, ingress: list | None, egress: list | None) -> dict:
    """The NetworkPolicy spec that a row of NETWORK_POLICIES describes."""
    spec = {
        "podSelector": selects,
        "policyTypes": [t for t, r in (("Ingress", ingress), ("Egress", egress)) if r is not None],
    }
    for key, side, rules in (("ingress", "from", ingress), ("egress", "to", egress)):
        if rules:
            spec[key] = [{"ports": ports, **({side: peers} if peers is not None else {})} for peers, ports in rules]
    return spec


@pytest.mark.parametrize("name", sorted(NETWORK_POLICIES))
def test_network_policy_allows_exactly_its_flows(rendered, name):
    assert rendered["tagged"].get("NetworkPolicy", name)["spec"] == policy_spec(*NETWORK_POLICIES[name])


def test_no_other_network_policy(rendered):
    for manifests in rendered.values():
        assert {o["metadata"]["name"] for o in manifests.objects if o["kind"] == "NetworkPolicy"} == set(
            NETWORK_POLICIES
        )


def test_cluster_specific_flows_follow_the_spec(rendered):
    pinned = rendered["pinned"]
    nginx = pinned.get("NetworkPolicy", "smile-nginx")["spec"]
    assert nginx["ingress"] == [{"from": [controller("ingress-system")], "ports": tcp(8080)}]
    storage = pinned.get("NetworkPolicy", "smile-timemachine")["spec"]["egress"][1]
    assert storage == {
        "to": [{"ipBlock": {"cidr": "192.0.2.10/32"}}, {"ipBlock": {"cidr": "2001:db8::/64"}}],
        "ports": tcp(9000),
    }


# --- Pods ---------------------------------------------------------------------------------------------------

# High UIDs that belong to no user of a node; the database keeps the postgres image's own user.
RUN_AS = {
    ("Deployment", "smile-core"): 10033,
    ("Deployment", "smile-nginx"): 10101,
    ("Deployment", "smile-memcached"): 11211,
    ("CronJob", "smile-timemachine"): 10001,
    ("CronJob", "smile-restore"): 10001,
    ("StatefulSet", "smile-database"): 999,
}


@pytest.mark.parametrize(("kind", "name"), sorted(RUN_AS))
def test_run_as_user(rendered, kind, name):
    pod = pod_spec(rendered["tagged"].get(kind, name))
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (RUN_AS[kind, name],) * 2
    assert all("runAsUser" not in c["securityContext"] for c in pod["containers"])  # no container goes lower


def test_every_workload_has_its_user_and_only_the_database_runs_below_10000(rendered):
    workloads = {(o["kind"], o["metadata"]["name"]) for o, _, _ in containers(rendered["tagged"].objects)}
    assert workloads == set(RUN_AS)
    assert [key for key, uid in RUN_AS.items() if uid < 10000] == [("StatefulSet", "smile-database")]


# Variables whose names look like secrets but are not, and what they are.
NOT_SECRETS = {"RESTORE_KEY": "the storage key (object name) of the dump a restore Job restores"}


@pytest.mark.parametrize("which", ["tagged", "pinned"])
def test_no_secret_reaches_a_container_through_its_environment(rendered, which):
    """Passwords and keys are files of mounted Secrets; the environment holds at most their paths (*_FILE)."""
    referenced = set()
    for obj, pod, container in containers(rendered[which].objects):
        where = f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}"
        assert all("secretRef" not in source for source in container.get("envFrom", [])), where
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
        for env in container.get("env", []):
            assert "secretKeyRef" not in env.get("valueFrom", {}), (where, env["name"])
            if env["name"] in NOT_SECRETS:
                assert env.get("value", "") == "" and "valueFrom" not in env, (where, env["name"])  # set per Job
            elif re.search("PASSWORD|SECRET|KEY|TOKEN|CREDENTIALS", env["name"]):
                assert env["name"].endswith("_FILE"), (where, env["name"])
                directory, _, file = env["value"].rpartition("/")
                mount = mounts[directory]
                secret = volumes[mount["name"]]["secret"]
                assert mount["readOnly"] is True and file in SECRET_FILES[secret["secretName"]], (where, env["name"])
        for volume in volumes.values():
            if "secret" in volume:
                referenced.add(volume["secret"]["secretName"])
                assert volume["secret"]["defaultMode"] == 0o440, where  # owner and fsGroup only
    assert referenced == set(SECRET_FILES)


@pytest.mark.parametrize("which", ["tagged", "pinned"])
def test_image_pull_policy_is_explicit(rendered, which):
    """A digest names one content forever (cached copy is fine); a tag may have moved, so it is pulled again."""
    for obj, _, container in containers(rendered[which].objects):
        expected = "IfNotPresent" if "@sha256:" in container["image"] else "Always"
        assert container["imagePullPolicy"] == expected, obj["metadata"]["name"]


def test_every_empty_dir_has_a_size_limit(rendered):
    empty_dirs = [
        (obj["metadata"]["name"], volume)
        for obj in rendered["tagged"].objects
        for volume in (pod_spec(obj) or {}).get("volumes", [])
        if "emptyDir" in volume
    ]
    assert len(empty_dirs) == 8
    assert all(volume["emptyDir"].get("sizeLimit") for _, volume in empty_dirs), empty_dirs


def test_replicated_workloads_have_a_disruption_budget_and_spread(rendered):
    large = rendered["pinned"]
    workloads = [o for o in large.objects if o["kind"] in ("Deployment", "StatefulSet")]
    replicated = {o["metadata"]["name"] for o in workloads if o["spec"]["replicas"] > 1}
    assert replicated == {"smile-core", "smile-nginx"}
    # No budget for single-replica workloads: it would block node drains forever.
    assert {o["metadata"]["name"] for o in large.objects if o["kind"] == "PodDisruptionBudget"} == replicated
    for name in replicated:
        deployment = large.get("Deployment", name)
        labels = deployment["spec"]["selector"]["matchLabels"]
        assert large.get("PodDisruptionBudget", name)["spec"] == {
            "maxUnavailable": 1,
            "selector": {"matchLabels": labels},
        }
        spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert [c["topologyKey"] for c in spread] == ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
        for constraint in spread:
            assert constraint["labelSelector"] == {"matchLabels": labels}
            assert (constraint["maxSkew"], constraint["matchLabelKeys"]) == (1, ["pod-template-hash"])


def test_the_application_uses_its_own_role_and_only_backups_the_superuser(rendered):
    manifests = rendered["tagged"]
    database = pod_spec(manifests.get("StatefulSet", "smile-database"))["containers"][0]
    env = {e["name"]: e.get("value") for e in database["env"]}
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD_FILE"]) == (
        "postgres",
        "/run/secrets/smile-database-superuser/password",
    )
    assert manifests.get("ConfigMap", "smile-settings")["data"]["DATABASE_USER"] == "smile"

    def secrets_of(kind, name):
        return {v["secret"]["secretName"] for v in pod_spec(manifests.get(kind, name))["volumes"] if "secret" in v}

    assert secrets_of("Deployment", "smile-core") == {"smile-database"}
    assert secrets_of("CronJob", "smile-timemachine") == {"smile-database-superuser", "smile-timemachine-s3"}
    assert secrets_of("CronJob", "smile-restore") == {"smile-database-superuser", "smile-timemachine-s3"}


def test_init_script_makes_the_application_role_owner_but_not_superuser(rendered, tmp_path):
    """The database's init script, run by a real PostgreSQL under a unique role name (roles are server-wide)."""
    script = rendered["tagged"].get("ConfigMap", "smile-database-init")["data"]["10-application-role.sql"]
    role = f"smile_{secrets.token_hex(4)}"
    (tmp_path / "init.sql").write_text(re.sub(r"\bsmile\b", role, script))
    password = secrets.token_urlsafe(16)
    (tmp_path / "password").write_text(password + "\n")
    server = connection.settings_dict
    env = {"PGHOST": server["HOST"] or "127.0.0.1", "PGPORT": str(server["PORT"] or 5432), "PATH": "/usr/bin:/bin"}
    admin = {**env, "PGUSER": server["USER"], "PGPASSWORD": server["PASSWORD"] or "", "PGDATABASE": "postgres"}

    def psql(*args, as_env=admin):
        done = subprocess.run(["psql", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-Atq", *args], env=as_env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    try:
        psql(
            "-f",
            str(tmp_path / "init.sql"),
            as_env={**admin, "SMILE_DATABASE_PASSWORD_FILE": str(tmp_path / "password")},
        )
        attributes = psql(
            "-c", f"SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication FROM pg_roles WHERE rolname = '{role}'"
        )
        assert attributes == "f|f|f|f"
        assert psql("-c", f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{role}'") == role
        own = {**env, "PGUSER": role, "PGPASSWORD": password, "PGDATABASE": role}
        assert psql("-c", "CREATE TABLE course (id int); SELECT current_user", as_env=own) == role
        assert psql("-c", "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'public'", as_env=own) == role
    finally:
        psql("-c", f"DROP DATABASE IF EXISTS {role}", "-c", f"DROP ROLE IF EXISTS {role}")


# --- The secrets the engine creates (through the emulator) ----------------------------------------------------

PORTAL_KEY_ID = "PORTALWIDEKEY0000001"
PORTAL_SECRET = "portal-wide-secret-that-never-leaves-the-portal"


@pytest.fixture
def sent(monkeypatch, settings):
    """Every request the portal sends to a cluster, with the portal's own storage key set to recognisable values."""
    settings.PORTAL_BACKUP_S3_ACCESS_KEY_ID, settings.PORTAL_BACKUP_S3_SECRET_ACCESS_KEY = PORTAL_KEY_ID, PORTAL_SECRET
    requests = []
    exchange = ClusterClient._exchange

    def spy(self, method, path, **kwargs):
        requests.append((method, path, kwargs.get("body")))
        return exchange(self, method, path, **kwargs)

    monkeypatch.setattr(ClusterClient, "_exchange", spy)
    return requests


def revealed(obj) -> str:
    """An object (a request body, a stored Secret) as text, with every Secret value decoded."""
    if isinstance(obj, dict) and obj.get("kind") == "Secret":
        values = [base64.b64decode(v).decode() for v in (obj.get("data") or {}).values()]
        return json.dumps(obj) + json.dumps(values)
    return obj if isinstance(obj, str) else json.dumps(obj, default=str)


def secret_values(emulator, namespace: str) -> dict[str, dict[str, str]]:
    """Secret name -> file -> decoded value, as the instance's pods would read them."""
    found = {}
    for secret in emulator.list_objects("v1", "Secret", namespace):
        values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        found[secret["metadata"]["name"]] = {**values, **(secret.get("stringData") or {})}
    return found


def give_credentials(slug: str, key_id: str, secret: str) -> Instance:
    """What a maintainer does in the admin (the secret half is encrypted by the field)."""
    instance = Instance.objects.get(slug=slug)
    instance.backup_access_key_id, instance.backup_secret_access_key = key_id, secret
    instance.save(update_fields=["backup_access_key_id", "backup_secret_access_key"])
    return instance


def back_up(admin, instance: Instance) -> Backup:
    workflow.request_backup(ctx(admin), instance)
    dispatcher.dispatch()
    run_worker()
    return Backup.objects.filter(instance=instance).latest("pk")


def test_two_instances_share_no_secret_and_never_see_the_portal_key(
    sent, kube_emulator, cluster, queues, admin_unistra, admin_unicaen, maintainer, unistra, unicaen, smile, versions
):
    for admin, organisation, slug in ((admin_unistra, unistra, "smile-a"), (admin_unicaen, unicaen, "smile-b")):
        assert create_and_run(admin, maintainer, organisation, smile, versions["1.2.4"], slug=slug).status == (
            RequestStatus.SUCCEEDED
        )
        instance = give_credentials(slug, f"KEY-{slug}", f"secret-{slug}-{secrets.token_hex(8)}")
        assert back_up(admin, instance).status == BackupStatus.VERIFIED  # uploaded with its key, read back
    a, b = (secret_values(kube_emulator, f"saas-{slug}") for slug in ("smile-a", "smile-b"))
    assert set(a) == set(b) == set(SECRET_FILES)
    # Only where the storage is (the same for every instance, and not secret) may be equal; everything else differs.
    public = {("smile-timemachine-s3", name) for name in ("endpoint", "bucket", "region")}
    for name, files in a.items():
        for file, value in files.items():
            if (name, file) not in public:
                assert value not in json.dumps(b), (name, file)
    assert a["smile-timemachine-s3"]["prefix"] == "instances/smile-a/"
    assert "aws_access_key_id = KEY-smile-a\n" in a["smile-timemachine-s3"]["credentials"]
    assert a["smile-database"]["password"] != a["smile-database-superuser"]["password"]
    for slug in ("smile-a", "smile-b"):
        # Every Secret the instance's manifests mount is one of its own namespace's.
        manifests = Operation.objects.filter(instance__slug=slug).exclude(manifests="").latest("pk").manifests
        objects = [o for o in yaml.safe_load_all(manifests) if o]
        mounted = {
            v["secret"]["secretName"] for o in objects for v in (pod_spec(o) or {}).get("volumes", []) if "secret" in v
        }
        assert mounted == set(SECRET_FILES)
        tls = [t["secretName"] for o in objects if o["kind"] == "Ingress" for t in o["spec"]["tls"]]
        assert tls == [f"{slug}-tls"]  # issued into the instance's own namespace (cert-manager or by hand)
    # The portal's own key: in no request, no stored object, no manifest and no log line.
    everything = [revealed(body) for _, _, body in sent if body is not None]
    for namespace in ("saas-smile-a", "saas-smile-b"):
        everything += [revealed(s) for s in kube_emulator.list_objects("v1", "Secret", namespace)]
    everything += [o.manifests + json.dumps(o.log) for o in Operation.objects.all()]
    assert len(sent) > 20
    for text in everything:
        assert PORTAL_KEY_ID not in text and PORTAL_SECRET not in text


def test_without_credentials_of_its_own_an_instance_gets_no_storage_secret_and_its_backup_fails_saying_why(
    sent, kube_emulator, cluster, controllers, queues, admin_unistra, maintainer, unistra, smile, versions
):
    create_and_run(admin_unistra, maintainer, unistra, smile, versions["1.2.4"], slug="smile-c", credentials=False)
    assert "smile-timemachine-s3" not in secret_values(kube_emulator, "saas-smile-c")
    # The emulator runs no container: play the kubelet, whose Job would exit at once ("no backup storage
    # credentials for this instance", timemachine.yaml) since the optional Secret is absent.
    controllers.fail_jobs = True
    backup = back_up(admin_unistra, Instance.objects.get(slug="smile-c"))
    assert backup.status == BackupStatus.FAILED
    assert backup.message.endswith("; the instance has no backup storage credentials of its own")
    log = [line["message"] for line in Operation.objects.filter(kind="backup").get().log]
    assert "smile-c has no backup storage credentials of its own: its backup Job cannot upload" in log
    assert all(PORTAL_SECRET not in revealed(body) for _, _, body in sent if body is not None)


def test_a_secret_of_an_older_portal_is_replaced_whole_and_removed_with_the_credentials(
    sent, kube_emulator, cluster, queues, admin_unistra, maintainer, unistra, smile, versions
):
    create_and_run(admin_unistra, maintainer, unistra, smile, versions["1.2.4"], slug="smile-d", credentials=False)
    # What older portals wrote into every namespace: the portal-wide key.
    old = {"access-key-id": PORTAL_KEY_ID, "secret-access-key": PORTAL_SECRET, "bucket": "smile-backups"}
    kube_emulator.seed({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "smile-timemachine-s3",
                        "namespace": "saas-smile-d"}, "stringData": old})  # fmt: skip
    instance = give_credentials("smile-d", "KEY-D", "secret-d")
    assert back_up(admin_unistra, instance).status == BackupStatus.VERIFIED
    storage = secret_values(kube_emulator, "saas-smile-d")["smile-timemachine-s3"]
    # The files the timemachine reads (region empty: none configured), and the same key under the names the
    # CronJob of portals before 1.0 reads, until the next full apply replaces it.
    assert set(storage) == {
        "endpoint",
        "bucket",
        "prefix",
        "credentials",
        "region",
        "access-key-id",
        "secret-access-key",
    }
    assert "aws_secret_access_key = secret-d\n" in storage["credentials"]
    assert PORTAL_SECRET not in revealed(
        kube_emulator.get_object("v1", "Secret", "saas-smile-d", "smile-timemachine-s3")
    )
    # Credentials withdrawn in the portal: the next run takes the Secret away rather than leave a stale key.
    give_credentials("smile-d", "", "")
    back_up(admin_unistra, instance)
    assert "smile-timemachine-s3" not in secret_values(kube_emulator, "saas-smile-d")


def test_the_admin_takes_the_secret_key_write_only_and_never_audits_it(db, instance_unistra):
    from core.admin_audit import snapshot
    from instances.admin import InstanceForm

    def submit(**changes):
        data = {
            f: getattr(instance_unistra, f"{f}_id", None) or getattr(instance_unistra, f)
            for f in InstanceForm._meta.fields
        }
        data["settings"] = json.dumps(data["settings"])
        form = InstanceForm(data={**data, **changes}, instance=Instance.objects.get(pk=instance_unistra.pk))
        assert form.is_valid(), form.errors
        return form.save()

    assert 'value="' not in str(InstanceForm(instance=instance_unistra)["backup_secret_access_key"])
    saved = submit(backup_access_key_id="KEY-U", backup_secret_access_key="s3cr3t-u")
    assert Instance.objects.get(pk=saved.pk).backup_secret_access_key == "s3cr3t-u"
    assert "s3cr3t-u" not in json.dumps(snapshot(saved))
    assert submit(backup_access_key_id="KEY-U").backup_secret_access_key == "s3cr3t-u"  # empty keeps it
    refused = InstanceForm(data={"backup_access_key_id": "KEY U"}, instance=saved)
    assert "backup_access_key_id" in refused.errors
    removed = submit(remove_backup_credentials="on")
    assert (removed.backup_access_key_id, removed.backup_secret_access_key) == ("", "")
