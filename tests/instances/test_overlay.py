"""Per-instance overlays rendered by the real Kustomize and validated against upstream Kubernetes schemas."""

import hashlib
import json
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from instances.kube.kustomize import Kustomize, KustomizeError
from instances.kube.overlay import DEFAULT_BASE, ImageRef, OverlaySpec
from instances.kube.render import pod_spec, render, write_overlay
from instances.kube.schedule import validate_cron
from instances.kube.sizes import SIZE_PROFILES

# The oldest and the newest Kubernetes versions whose schemas kubernetes-validate bundles that we support:
# kubectl on our machines is 1.32, and 1.37 is the newest schema of kubernetes-validate 1.37.
K8S_VERSIONS = ("1.32", "1.37")

PLACEHOLDERS = ("smile-core", "smile-nginx", "memcached", "postgres", "smile-timemachine")


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


TAGGED_IMAGES = {p: ImageRef(f"quay.example.org/smile/{p}", tag="1.2.4") for p in PLACEHOLDERS}
# Tags and digests both given: the digest must win.
DIGEST_IMAGES = {
    p: ImageRef(f"registry.example.org:5000/smile/{p}", tag="1.2.5", digest=digest(p)) for p in PLACEHOLDERS
}

HOSTILE_VALUE = "a\nkind: Secret"
HOSTILE_DOCUMENT = "x\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: stolen\nstringData:\n  k: v\n"

SPECS = {
    "small": OverlaySpec(
        instance="unistra",
        organisation="unistra",
        images=TAGGED_IMAGES,
        host="smile-unistra.apps.example.org",
        tls_secret_name="smile-unistra-tls",
    ),
    "medium": OverlaySpec(
        instance="unicaen",
        organisation="unicaen",
        images=DIGEST_IMAGES,
        host="smile.unicaen.fr",
        size="medium",
        settings={
            "APP_ENV": "staging",
            "MAIL_FROM": "smile@unicaen.fr",
            "MAX_UPLOAD_MB": 20,
            "DEBUG": False,
            "message": HOSTILE_VALUE,
            "injected": HOSTILE_DOCUMENT,
            "flow": "{a: 1, b: [2]}",
            "quoted": "'\"&anchor *alias !!python/object:os.system",
        },
        timemachine_schedule="30 1 * * mon-fri",
    ),
    "large": OverlaySpec(
        instance="uha-prod",
        organisation="uha",
        images=TAGGED_IMAGES,
        host="smile.uha.fr",
        tls_secret_name="uha-wildcard",
        tls_cluster_issuer="letsencrypt-prod",
        ingress_class="traefik",
        ingress_controller_namespace="traefik",
        backup_storage_port=9000,
        backup_storage_cidrs=("192.0.2.10", "2001:db8::/64"),
        pod_security_version="v1.32",
        size="large",
        extra_labels={"example.org/cost-centre": "cc-1042", "tier": "gold"},
        timemachine_time_zone="Etc/UTC",
        namespace_prefix="smile-",
    ),
}

# Exactly what a render contains: a setting can never add an object.
EXPECTED_OBJECTS = {
    ("Namespace", None),
    ("ResourceQuota", "smile-quota"),
    ("LimitRange", "smile-limits"),
    ("NetworkPolicy", "default-deny"),
    ("NetworkPolicy", "allow-dns"),
    ("NetworkPolicy", "smile-nginx"),
    ("NetworkPolicy", "smile-core"),
    ("NetworkPolicy", "smile-database"),
    ("NetworkPolicy", "smile-memcached"),
    ("NetworkPolicy", "smile-timemachine"),
    ("ServiceAccount", "smile"),
    ("ConfigMap", "smile-settings"),
    ("ConfigMap", "smile-database-init"),
    ("PodDisruptionBudget", "smile-core"),
    ("PodDisruptionBudget", "smile-nginx"),
    ("Service", "smile-core"),
    ("Service", "smile-database"),
    ("Service", "smile-memcached"),
    ("Service", "smile-nginx"),
    ("StatefulSet", "smile-database"),
    ("Deployment", "smile-core"),
    ("Deployment", "smile-memcached"),
    ("Deployment", "smile-nginx"),
    ("CronJob", "smile-timemachine"),
    ("CronJob", "smile-restore"),
    ("Ingress", "smile"),
}


@pytest.fixture(scope="module")
def renders():
    """Render each configuration at most once per module (Kustomize takes a few tenths of a second)."""
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = render(SPECS[name])
        return cache[name]

    return get


@pytest.fixture(scope="module", params=sorted(SPECS))
def case(request, renders):
    """(spec, rendered manifests) of each configuration."""
    return SPECS[request.param], renders(request.param)


def workloads(objects):
    """(object, pod spec) of every object that carries a pod template."""
    return [(obj, pod) for obj in objects if (pod := pod_spec(obj)) is not None]


def containers(objects):
    return [(obj, c) for obj, pod in workloads(objects) for c in [*pod.get("initContainers", []), *pod["containers"]]]


_SUFFIXES = {"m": Fraction(1, 1000), "k": 1000, "M": 1000**2, "G": 1000**3, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def quantity(value: str) -> Fraction:
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if value.endswith(suffix):
            return Fraction(value[: -len(suffix)]) * _SUFFIXES[suffix]
    return Fraction(value)


# --- Every render ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_passes_strict_schema_validation(case, version):
    _, rendered = case
    for obj in rendered.objects:
        assert kubernetes_validate.validate(obj, version, strict=True) == version, obj["kind"]


def test_render_contains_exactly_the_expected_objects(case):
    spec, rendered = case
    found = {(o["kind"], None if o["kind"] == "Namespace" else o["metadata"]["name"]) for o in rendered.objects}
    assert found == EXPECTED_OBJECTS
    assert len(rendered.objects) == len(EXPECTED_OBJECTS)
    assert rendered.get("Namespace", spec.namespace)["metadata"]["name"] == spec.namespace
    # The database password is never rendered: the portal creates that Secret itself (see the base README).
    assert not [o for o in rendered.objects if o["kind"] == "Secret"]


def test_yaml_is_the_objects_in_apply_order(case):
    _, rendered = case
    assert [o for o in yaml.safe_load_all(rendered.yaml) if o] == rendered.objects
    kinds = [o["kind"] for o in rendered.objects]
    assert kinds[0] == "Namespace"
    assert (
        kinds.index("ResourceQuota") < kinds.index("StatefulSet") < kinds.index("Deployment") < kinds.index("Ingress")
    )
    assert rendered.sha256 == hashlib.sha256(rendered.yaml.encode()).hexdigest()


def test_namespace_and_portal_labels_on_every_object(case):
    spec, rendered = case
    identity = {
        "app.kubernetes.io/managed-by": "saas-portal",
        "saas-portal.io/application": "smile",
        "saas-portal.io/instance": spec.instance,
        "saas-portal.io/organisation": spec.organisation,
    }
    for obj in rendered.objects:
        metadata = obj["metadata"]
        if obj["kind"] != "Namespace":
            assert metadata["namespace"] == spec.namespace, obj["kind"]
        assert identity.items() <= metadata["labels"].items(), (obj["kind"], metadata["name"])
        assert spec.extra_labels.items() <= metadata["labels"].items(), (obj["kind"], metadata["name"])
    for obj, _ in workloads(rendered.objects):
        template = (
            obj["spec"]["jobTemplate"]["spec"]["template"] if obj["kind"] == "CronJob" else obj["spec"]["template"]
        )
        # Pods are labelled with the instance too, but selectors (immutable) keep only the base's labels.
        assert identity.items() <= template["metadata"]["labels"].items()
        if "selector" in obj["spec"]:
            assert set(obj["spec"]["selector"]["matchLabels"]) == {
                "app.kubernetes.io/name",
                "app.kubernetes.io/component",
            }


def test_every_image_is_the_mapped_one(case):
    spec, rendered = case
    expected = {ref.reference for ref in spec.images.values()}
    images = {c["image"] for _, c in containers(rendered.objects)}
    assert images == expected
    core = rendered.get("Deployment", "smile-core")["spec"]["template"]["spec"]["containers"][0]
    if spec.images["smile-core"].digest:
        # pinned by digest; the tag stays in the reference for the reader
        assert core["image"] == f"registry.example.org:5000/smile/smile-core:1.2.5@{digest('smile-core')}"
    else:
        assert core["image"] == "quay.example.org/smile/smile-core:1.2.4"


def test_pod_security_quota_limitrange_and_default_deny_in_every_render(case):
    """The other network policies are written out flow by flow in test_isolation.py."""
    spec, rendered = case
    namespace_labels = rendered.get("Namespace", spec.namespace)["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert namespace_labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        # Pinned, never "latest": a cluster upgrade must not change the standard the pods are held to.
        assert namespace_labels[f"pod-security.kubernetes.io/{mode}-version"] == spec.pod_security_version
    assert spec.pod_security_version == ("v1.32" if spec.size == "large" else "v1.31")

    profile = SIZE_PROFILES[spec.size]
    assert rendered.get("ResourceQuota", "smile-quota")["spec"]["hard"] == dict(profile.quota)
    limits = {item["type"]: item for item in rendered.get("LimitRange", "smile-limits")["spec"]["limits"]}
    assert limits["Container"]["max"] == {"cpu": profile.container_max_cpu, "memory": profile.container_max_memory}
    assert limits["PersistentVolumeClaim"]["max"] == {"storage": profile.database_storage}

    deny = rendered.get("NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_every_pod_and_container_is_hardened(case):
    _, rendered = case
    assert len(workloads(rendered.objects)) == 6
    for obj, pod in workloads(rendered.objects):
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            where = f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}"
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert set(container["resources"]["requests"]) == {"cpu", "memory"}, where
            assert set(container["resources"]["limits"]) == {"cpu", "memory"}, where
            if obj["kind"] == "CronJob":
                assert "livenessProbe" not in container and "readinessProbe" not in container, where
            else:
                assert "livenessProbe" in container and "readinessProbe" in container, where
            # Every writable path is a volume, since the root filesystem is read-only.
            volumes = {v["name"] for v in pod.get("volumes", [])} | {
                t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])
            }
            assert {m["name"] for m in container.get("volumeMounts", [])} <= volumes, where


def test_size_profile_is_applied(case):
    spec, rendered = case
    profile = SIZE_PROFILES[spec.size]
    core = rendered.get("Deployment", "smile-core")["spec"]
    assert core["replicas"] == profile.core_replicas
    assert core["template"]["spec"]["containers"][0]["resources"] == profile.core.as_dict()
    nginx = rendered.get("Deployment", "smile-nginx")["spec"]
    assert nginx["replicas"] == profile.nginx_replicas
    assert nginx["template"]["spec"]["containers"][0]["resources"] == profile.nginx.as_dict()
    memcached = rendered.get("Deployment", "smile-memcached")["spec"]["template"]["spec"]["containers"][0]
    assert memcached["args"] == ["-m", str(profile.memcached_cache_mib)]
    assert profile.memcached_cache_mib * 1024**2 < quantity(memcached["resources"]["limits"]["memory"])
    database = rendered.get("StatefulSet", "smile-database")["spec"]
    assert database["template"]["spec"]["containers"][0]["resources"] == profile.database.as_dict()
    assert database["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == profile.database_storage
    timemachine = rendered.get("CronJob", "smile-timemachine")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert timemachine["containers"][0]["resources"] == profile.timemachine.as_dict()
    restore = rendered.get("CronJob", "smile-restore")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert restore["containers"][0]["resources"] == profile.timemachine.as_dict()


def test_quota_leaves_room_for_a_rolling_update_two_backups_and_a_restore(case):
    """One surge pod per Deployment (maxSurge 1), two backup pods and a restore (or drill) pod must fit, or an
    upgrade would stall. The restore CronJob is suspended and Forbid: the portal runs one of its Jobs at a time."""
    _, rendered = case
    hard = {k: quantity(v) for k, v in rendered.get("ResourceQuota", "smile-quota")["spec"]["hard"].items()}
    container_max = next(
        i["max"] for i in rendered.get("LimitRange", "smile-limits")["spec"]["limits"] if i["type"] == "Container"
    )
    totals = {"requests.cpu": 0, "requests.memory": 0, "limits.cpu": 0, "limits.memory": 0, "pods": 0}
    for obj, pod in workloads(rendered.objects):
        spec = obj["spec"]
        if obj["kind"] == "Deployment":
            assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
            pods = spec["replicas"] + 1
        elif obj["kind"] == "StatefulSet":
            pods = spec["replicas"]
        elif spec.get("suspend"):
            assert spec["concurrencyPolicy"] == "Forbid"
            pods = 1
        else:
            pods = 2
        totals["pods"] += pods
        for container in pod["containers"]:
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    totals[f"{kind}.{resource}"] += pods * quantity(container["resources"][kind][resource])
            for resource in ("cpu", "memory"):
                assert quantity(container["resources"]["limits"][resource]) <= quantity(container_max[resource])
    for key, total in totals.items():
        assert total <= hard[key], key
    storage = rendered.get("StatefulSet", "smile-database")["spec"]["volumeClaimTemplates"][0]["spec"]
    assert quantity(storage["resources"]["requests"]["storage"]) <= hard["requests.storage"]


def test_ingress_host_tls_and_class(case):
    spec, rendered = case
    ingress = rendered.get("Ingress", "smile")["spec"]
    assert ingress["ingressClassName"] == spec.ingress_class
    assert [rule["host"] for rule in ingress["rules"]] == [spec.host]
    assert ingress["tls"] == [{"hosts": [spec.host], "secretName": spec.tls_secret_name}]
    # With an issuer, cert-manager issues the certificate into that secret; without, nothing asks it to.
    annotations = rendered.get("Ingress", "smile")["metadata"].get("annotations", {})
    if spec.tls_cluster_issuer:
        assert annotations == {"cert-manager.io/cluster-issuer": spec.tls_cluster_issuer}
    else:
        assert "cert-manager.io/cluster-issuer" not in annotations


def test_backup_cronjob(case):
    spec, rendered = case
    cron = rendered.get("CronJob", "smile-timemachine")["spec"]
    assert (cron["schedule"], cron["timeZone"]) == (spec.timemachine_schedule, spec.timemachine_time_zone)
    assert cron["concurrencyPolicy"] == "Forbid"
    assert (cron["successfulJobsHistoryLimit"], cron["failedJobsHistoryLimit"]) == (7, 3)
    job = cron["jobTemplate"]["spec"]
    assert (job["backoffLimit"], job["activeDeadlineSeconds"]) == (2, 3600)
    pod = job["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    # The superuser dumps the database; passwords and keys are files of the mounted Secrets.
    assert env["PGUSER"] == "postgres"
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == "/run/secrets/smile-timemachine-s3/credentials"
    secrets = {v["secret"]["secretName"]: v["secret"] for v in pod["volumes"] if "secret" in v}
    assert set(secrets) == {"smile-database-superuser", "smile-timemachine-s3"}
    # Optional: without the instance's own credentials the Job starts and fails at once, saying why.
    assert secrets["smile-timemachine-s3"].get("optional") is True
    assert not secrets["smile-database-superuser"].get("optional")
    script = pod["containers"][0]["command"][-1]
    assert 'target="s3://$(cat "$s3/bucket")/$(cat "$s3/prefix")${JOB_NAME}.dump"' in script
    assert "no backup storage credentials for this instance" in script
    # Mounts are reached through variables only (the host job runner and test_backup_jobs.py rely on it).
    assert (env["STORAGE_DIR"], env["DATABASE_SUPERUSER_DIR"], env["TMPDIR"]) == (
        "/run/secrets/smile-timemachine-s3",
        "/run/secrets/smile-database-superuser",
        "/tmp",
    )
    assert "/run/secrets" not in script and "/tmp" not in script
    assert '--metadata "sha256=${sha256},size=${size}"' in script


def test_restore_cronjob(case):
    """Suspended, run only by the portal; same image, pod identity, Secrets and resources as the timemachine."""
    spec, rendered = case
    restore = rendered.get("CronJob", "smile-restore")
    timemachine = rendered.get("CronJob", "smile-timemachine")
    assert restore["spec"]["suspend"] is True
    assert restore["spec"]["concurrencyPolicy"] == "Forbid"
    assert restore["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    pod, backup_pod = (pod_spec(obj) for obj in (restore, timemachine))
    container, backup_container = pod["containers"][0], backup_pod["containers"][0]
    assert container["image"] == backup_container["image"] == spec.images["smile-timemachine"].reference
    assert container["imagePullPolicy"] == backup_container["imagePullPolicy"]
    assert pod["volumes"] == backup_pod["volumes"]
    assert container["volumeMounts"] == backup_container["volumeMounts"]
    # The pods are the timemachine's for the network policies (database and storage flows).
    labels = restore["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "timemachine"
    assert labels["saas-portal.io/instance"] == spec.instance
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["PGUSER"], env["RESTORE_ROLE"], env["RESTORE_MODE"]) == ("postgres", "smile", "drill")
    script = container["command"][-1]
    assert "/run/secrets" not in script and "/tmp" not in script
    assert "pg_restore --list" in script and "--single-transaction" in script


def test_settings_hash_on_core_pods(case):
    spec, rendered = case
    annotations = rendered.get("Deployment", "smile-core")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["saas-portal.io/settings-sha256"] == spec.settings_sha256


# --- Particular configurations -------------------------------------------------------------------------------


def test_hostile_settings_stay_literal_strings(renders):
    medium = renders("medium")
    data = medium.get("ConfigMap", "smile-settings")["data"]
    assert data["message"] == HOSTILE_VALUE
    assert data["injected"] == HOSTILE_DOCUMENT
    assert data["flow"] == "{a: 1, b: [2]}"
    assert data["quoted"] == "'\"&anchor *alias !!python/object:os.system"
    # Numbers and booleans become the strings a ConfigMap holds; base defaults stay, overridden ones change.
    assert (data["MAX_UPLOAD_MB"], data["DEBUG"], data["APP_ENV"]) == ("20", "false", "staging")
    assert data["DATABASE_HOST"] == "smile-database"
    assert {o["metadata"]["name"] for o in medium.objects}.isdisjoint({"stolen"})
    assert not [o for o in medium.objects if o["kind"] == "Secret"]


def test_extra_labels_are_kept_off_templates(renders):
    rendered = renders("large")
    # A later change of extra labels must not touch pod templates (a needless rollout) nor the StatefulSet's
    # volumeClaimTemplates (immutable).
    database = rendered.get("StatefulSet", "smile-database")["spec"]
    assert "tier" not in database["template"]["metadata"]["labels"]
    assert "tier" not in database["volumeClaimTemplates"][0]["metadata"]["labels"]
    assert rendered.get("StatefulSet", "smile-database")["metadata"]["labels"]["tier"] == "gold"


def test_hash_is_stable_and_follows_the_version(renders):
    small = renders("small")
    again = render(SPECS["small"])
    assert (again.sha256, again.yaml) == (small.sha256, small.yaml)
    upgraded_images = dict(TAGGED_IMAGES, **{"smile-core": ImageRef("quay.example.org/smile/smile-core", tag="1.2.5")})
    upgraded = render(replace(SPECS["small"], images=upgraded_images))
    assert upgraded.sha256 != small.sha256
    changed = {
        (o["kind"], o["metadata"]["name"]) for o, p in zip(upgraded.objects, small.objects, strict=True) if o != p
    }
    assert changed == {("Deployment", "smile-core")}


def test_write_overlay_writes_data_referencing_the_base(tmp_path):
    spec = SPECS["medium"]
    directory = write_overlay(spec, tmp_path / "overlay")
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert (directory / kustomization["resources"][0]).resolve() == DEFAULT_BASE.resolve()
    assert kustomization["namespace"] == "saas-unicaen"
    assert {
        "name": "smile-core",
        "newName": "registry.example.org:5000/smile/smile-core",
        "newTag": "1.2.5",
        "digest": digest("smile-core"),
    } in (kustomization["images"])
    settings_patch = next(json.loads(p["patch"]) for p in kustomization["patches"] if "ConfigMap" in p["patch"])
    assert settings_patch["data"]["message"] == HOSTILE_VALUE
    namespace = yaml.safe_load((directory / "namespace.yaml").read_text())
    assert namespace["metadata"]["name"] == "saas-unicaen"
    # The written overlay builds as it is, with its relative reference to the base in the repository.
    output = list(yaml.safe_load_all(Kustomize().build(directory)))
    assert len([o for o in output if o]) == len(EXPECTED_OBJECTS)


# --- Failures ------------------------------------------------------------------------------------------------


def test_broken_base_path_raises_kustomize_error(tmp_path):
    spec = replace(SPECS["small"], base_path=tmp_path / "no-such-base")
    with pytest.raises(KustomizeError, match="failed with exit code 1") as excinfo:
        render(spec)
    assert "no such file or directory" in str(excinfo.value)
    assert "no such file or directory" in excinfo.value.stderr
    assert excinfo.value.returncode == 1


def test_broken_base_content_raises_kustomize_error(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    with pytest.raises(KustomizeError, match=r"missing\.yaml"):
        render(replace(SPECS["small"], base_path=base))


def test_kustomize_binary_that_cannot_start(tmp_path):
    with pytest.raises(KustomizeError, match="could not be started"):
        Kustomize([str(tmp_path / "no-kustomize")]).build(tmp_path)


def test_kustomize_timeout(tmp_path):
    slow = Kustomize([sys.executable, "-c", "import time; time.sleep(10)"], timeout=0.3)
    with pytest.raises(KustomizeError, match=r"timed out after 0\.3s"):
        slow.build(tmp_path)


def test_default_command_prefers_kustomize_then_kubectl():
    command = Kustomize().command
    assert command[-1] in ("build", "kustomize")
    assert Path(command[0]).name == ("kustomize" if command[-1] == "build" else "kubectl")


def test_unmapped_image_placeholder_is_refused():
    images = {p: ref for p, ref in TAGGED_IMAGES.items() if p != "memcached"}
    with pytest.raises(ValueError, match="uses image 'memcached', which the overlay's images do not map"):
        render(replace(SPECS["small"], images=images))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"instance": "Unistra"}, "Instance slug 'Unistra' is not a valid DNS label"),
        ({"instance": "uni_stra"}, "Instance slug 'uni_stra' is not a valid DNS label"),
        ({"instance": "-unistra"}, "Instance slug '-unistra' is not a valid DNS label"),
        ({"instance": ""}, "Instance slug '' is not a valid DNS label"),
        ({"instance": "a" * 64}, "Instance slug 'a{64}' is not a valid DNS label"),
        ({"instance": "a" * 60}, "Namespace 'saas-a{60}' is not a valid DNS label"),
        ({"organisation": "uni strasbourg"}, "Organisation slug 'uni strasbourg' is not a valid DNS label"),
        ({"application": "smile\nkind"}, "Application slug 'smile\\\\nkind' is not a valid DNS label"),
        ({"host": "smile.example.org\n- evil"}, "Host .* is not a valid DNS name"),
        ({"host": "Smile.example.org"}, "Host 'Smile.example.org' is not a valid DNS name"),
        ({"tls_secret_name": "tls_secret"}, "TLS secret name 'tls_secret' is not a valid DNS name"),
        ({"size": "huge"}, "Size 'huge' is unknown; choose one of small, medium, large"),
        ({"settings": {"a:b": "x"}}, "Setting name 'a:b' is invalid"),
        ({"settings": {"a\nkind: Secret": "x"}}, "Setting name .* is invalid"),
        ({"settings": {"nested": {"a": 1}}}, "Setting 'nested' must be a string, an integer or a boolean, not dict"),
        ({"settings": {"nul": "a\x00b"}}, "Setting 'nul' contains the control character U\\+0000"),
        ({"settings": {"nel": "a\x85b"}}, "Setting 'nel' contains the control character U\\+0085"),
        ({"timemachine_schedule": "61 * * * *"}, "minute 61 is outside 0-59"),
        ({"timemachine_schedule": "0 2 * *"}, "must have 5 fields"),
        ({"timemachine_schedule": "0 2 * * * /bin/sh"}, "must have 5 fields"),
        ({"timemachine_schedule": "TZ=Europe/Paris 0 2 * * *"}, "set the time zone separately"),
        ({"timemachine_schedule": "0 5-2 * * *"}, "range '5-2' runs backwards"),
        ({"timemachine_schedule": "*/0 * * * *"}, "step '0' of the minute must be a positive number"),
        ({"timemachine_time_zone": "Mars/Olympus"}, "Time zone 'Mars/Olympus' is unknown"),
        ({"extra_labels": {"saas-portal.io/instance": "other"}}, "reserved for the portal"),
        ({"extra_labels": {"tier": "gold\nkind: Secret"}}, "Value .* of label 'tier' is invalid"),
        ({"extra_labels": {"bad key": "x"}}, "Label key 'bad key' is invalid"),
        ({"images": {}}, "No images given"),
        ({"pod_security_version": "latest"}, "Pod Security version 'latest' must be a Kubernetes version"),
        ({"backup_storage_cidrs": ("s3.example.org",)}, "'s3.example.org' is not an IP network"),
        ({"backup_storage_cidrs": ("192.0.2.1/24",)}, "'192.0.2.1/24' is not an IP network"),
        ({"backup_storage_port": 0}, "Backup storage port 0 is not a TCP port"),
        ({"backup_storage_port": "443"}, "Backup storage port '443' is not a TCP port"),
        ({"tls_cluster_issuer": "Lets Encrypt"}, "TLS cluster issuer 'Lets Encrypt' is not a valid DNS name"),
    ],
)
def test_invalid_spec_raises_value_error(changes, message):
    with pytest.raises(ValueError, match=message):
        replace(SPECS["small"], **changes)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"repository": "quay.example.org/smile/core"}, "needs a tag or a digest"),
        ({"repository": "quay.example.org/smile/core", "digest": "sha256:abc"}, "is not 'sha256:<64 hex digits>'"),
        ({"repository": "quay.example.org/smile/core", "tag": "1.2 4"}, "Image tag '1.2 4'"),
        ({"repository": "quay.example.org/Smile/core:1.2", "tag": "1.2"}, "is not a valid image name"),
    ],
)
def test_invalid_image_ref_raises_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageRef(**kwargs)


def test_image_ref_pins_the_digest_and_keeps_the_tag_for_the_reader():
    ref = ImageRef("quay.example.org/smile/core", tag="1.2.4", digest=digest("x"))
    assert ref.reference == f"quay.example.org/smile/core:1.2.4@{digest('x')}"
    assert ref.kustomize_entry("smile-core") == {
        "name": "smile-core",
        "newName": "quay.example.org/smile/core",
        "newTag": "1.2.4",
        "digest": digest("x"),
    }
    untagged = ImageRef("quay.example.org/smile/core", digest=digest("x"))
    assert untagged.reference == f"quay.example.org/smile/core@{digest('x')}"
    assert "newTag" not in untagged.kustomize_entry("smile-core")


@pytest.mark.parametrize(
    "schedule", ["@daily", "0 2 * * *", "30 1 * * mon-fri", "*/15 2-4 1,15 jan-jun 0", "0 0 * * 7"]
)
def test_valid_cron_schedules(schedule):
    assert validate_cron(schedule) == schedule


def test_spec_is_read_only():
    spec = SPECS["medium"]
    with pytest.raises(TypeError):
        spec.settings["APP_ENV"] = "production"
    assert spec.settings["APP_ENV"] == "staging"
    assert spec.namespace == "saas-unicaen"
