"""Bringing the cluster to the rendered manifests with the fewest API requests.

The instance records every object it last applied (key -> hash of the manifest, resourceVersion). An apply
sends one server-side apply PATCH for each object whose manifest changed since — nothing for the others — and
lists the namespace to prune only when the set of objects changed. A first apply, a drift seen by the status
sync, or a maintainer's full resync sends everything, creates the generated Secrets and prunes.

Secrets are never rendered. The database passwords are generated here once, in the cluster only; the backup
Secret holds the instance's own storage key (``credentials``), never the portal's.
"""

from __future__ import annotations

import base64
import secrets

import yaml
from django.utils import timezone

from core.messages import msg
from instances.choices import RolloutState
from instances.engine.credentials import UnreadableCredentials, credentials_for
from instances.engine.log import OperationLog
from instances.engine.rendering import last_applied, object_digest
from instances.kube.client import ApplyResult, ClusterClient
from instances.kube.kinds import WORKLOAD_KINDS, identity_labels, instance_match_labels, object_key
from instances.kube.render import RenderedManifests, SafeLoader, pod_spec
from instances.kube.rollout import workload_status
from instances.models import Instance, RolloutSnapshot

# The application's role ("smile", not a superuser) and the superuser ("postgres", for the backup Jobs only).
DATABASE_SECRET = "smile-database"
DATABASE_SUPERUSER_SECRET = "smile-database-superuser"
BACKUP_SECRET = "smile-timemachine-s3"
GENERATED_SECRETS = (DATABASE_SECRET, DATABASE_SUPERUSER_SECRET)


def instance_labels(instance: Instance) -> dict[str, str]:
    """The labels the overlay puts on every object of the instance (the secrets and backup Jobs get them too)."""
    return identity_labels(
        application=instance.application.slug, instance=instance.slug, organisation=instance.organisation.slug
    )


def ensure_secrets(client: ClusterClient, instance: Instance, log: OperationLog) -> None:
    """Create the database passwords once, then bring the backup Secret to the instance's own credentials."""
    ensure_generated_secrets(client, instance, log, GENERATED_SECRETS)
    sync_backup_secret(client, instance, log)


def ensure_generated_secrets(client: ClusterClient, instance: Instance, log: OperationLog, names) -> None:
    """Create the named database passwords unless they exist: never rendered, never shown, never rotated by an
    apply (the portal does not even know them)."""
    for name in names:
        if client.create_if_absent(_secret(instance, name, string_data={"password": secrets.token_urlsafe(32)})):
            log(msg("generated the database password (Secret %(name)s)"), name=name)


def mounted_secrets(objects: list[dict]) -> set[str]:
    """The Secrets that the pods of these objects mount."""
    return {
        volume["secret"]["secretName"]
        for obj in objects
        for volume in (pod_spec(obj) or {}).get("volumes", [])
        if "secret" in volume
    }


def sync_backup_secret(client: ClusterClient, instance: Instance, log: OperationLog) -> bool:
    """Make the backup Secret hold the instance's own storage credentials, or remove it when the instance has
    none (its backup Jobs then fail, saying so); True when the Secret holds credentials.

    The portal's storage is the truth here, not the cluster: a key a maintainer changed replaces the old one.
    One read, and a write only when the content differs.
    """
    namespace = instance.namespace
    current = client.get("Secret", namespace, BACKUP_SECRET)
    try:
        credentials = credentials_for(instance)
    except UnreadableCredentials as error:
        log(msg("the instance's backup storage credentials cannot be read (%(reason)s): Secret %(name)s left as it is"),
            level="warning", reason=str(error), name=BACKUP_SECRET)  # fmt: skip
        return current is not None
    if credentials is None:
        if current is not None:
            client.delete("Secret", namespace, BACKUP_SECRET)
            log(msg("removed Secret %(name)s: the instance has no backup storage credentials of its own"),
                level="warning", name=BACKUP_SECRET)  # fmt: skip
        return False
    wanted = {key: base64.b64encode(value.encode()).decode() for key, value in credentials.secret_data().items()}
    if current is not None and (current.get("data") or {}) == wanted:
        return True
    if current is not None:
        # Replaced whole rather than patched, so that no key of the old Secret survives (older portals put the
        # portal-wide storage key there).
        client.delete("Secret", namespace, BACKUP_SECRET)
    client.create(_secret(instance, BACKUP_SECRET, data=wanted))
    log(msg("wrote the instance's own backup storage credentials (Secret %(name)s)"), name=BACKUP_SECRET)
    return True


def _secret(instance: Instance, name: str, *, string_data: dict | None = None, data: dict | None = None) -> dict:
    metadata = {"name": name, "namespace": instance.namespace, "labels": instance_labels(instance)}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "Opaque"}
    if string_data is not None:
        secret["stringData"] = string_data
    if data is not None:
        secret["data"] = data
    return secret


def workload_images(objects: list[dict]) -> dict[str, list[str]]:
    """kind/name -> container images of every Deployment and StatefulSet (what drift is measured against)."""
    return {
        f"{o['kind']}/{o['metadata']['name']}": sorted(
            c.get("image", "") for c in (pod_spec(o) or {}).get("containers", [])
        )
        for o in objects
        if o["kind"] in WORKLOAD_KINDS
    }


def _newly_mounted(instance: Instance, objects: list[dict], names) -> set[str]:
    """Secrets among ``names`` that these objects mount and the manifests of the last successful apply did not."""
    mounted = mounted_secrets(objects) & set(names)
    if not mounted:
        return mounted
    last = last_applied(instance)
    before = [obj for obj in yaml.load_all(last.manifests, Loader=SafeLoader) if obj] if last else []
    return mounted - mounted_secrets(before)


def needs_full_apply(instance: Instance) -> bool:
    """Nothing recorded yet (a first deployment, or records from before they were kept), or drift seen."""
    return not instance.applied_objects or instance.drift


def apply_manifests(
    client: ClusterClient, instance: Instance, rendered: RenderedManifests, log: OperationLog, *, full: bool = False
) -> list[dict]:
    """Apply what changed (everything when ``full``), prune what is no longer rendered; returns the applied
    objects. The record of applied objects is updated at once, whatever happens next."""
    full = full or needs_full_apply(instance)
    recorded = instance.applied_objects or {}
    keys = [object_key(obj) for obj in rendered.objects]
    digests = dict(zip(keys, map(object_digest, rendered.objects), strict=True))
    # What differs from the manifest recorded at the last apply; everything when full.
    changed = [
        obj
        for obj, key in zip(rendered.objects, keys, strict=True)
        if full or (recorded.get(key) or {}).get("sha256") != digests[key]
    ]
    known = {key: entry.get("version", "") for key, entry in recorded.items()}
    result = ApplyResult()
    namespaces = [o for o in changed if o["kind"] == "Namespace"]
    if namespaces:
        result.objects += client.apply(namespaces, known_versions=known).objects
    others = [o for o in changed if o["kind"] != "Namespace"]
    if full:
        ensure_secrets(client, instance, log)
    elif generated := sorted(_newly_mounted(instance, others, GENERATED_SECRETS)):
        # A new base may mount a password the instance's older manifests did not (the superuser's): it must exist
        # before the pods start. Only then is it checked, so that an ordinary upgrade sends nothing more.
        ensure_generated_secrets(client, instance, log, generated)
    if others:
        result.objects += client.apply(others, known_versions=known).objects
    counts = {action: len(result.with_action(action)) for action in ("created", "applied", "unchanged")}
    if full:
        text = msg("applied all %(total)s objects: %(created)s created, %(applied)s applied, %(unchanged)s unchanged")
    else:
        text = msg("applied the %(sent)s of %(total)s objects that changed since the last apply")
    log(text, sent=len(changed), total=len(rendered.objects), **counts)
    versions = result.versions
    record = {
        key: {"sha256": digest, "version": versions.get(key) or (recorded.get(key) or {}).get("version", "")}
        for key, digest in digests.items()
    }
    if full or record.keys() != recorded.keys():
        pruned = client.prune(instance.namespace, instance_match_labels(instance.slug), _refs(rendered))
        if pruned:
            log(
                msg("pruned objects no longer rendered: %(objects)s"),
                objects=", ".join(f"{k}/{n}" for _, k, n in pruned),
            )
    instance.applied_objects = record
    instance.applied_images = workload_images(rendered.objects)
    Instance.objects.filter(pk=instance.pk).update(
        applied_objects=instance.applied_objects, applied_images=instance.applied_images
    )
    return changed


def _refs(rendered: RenderedManifests) -> set[tuple[str, str, str]]:
    return {(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in rendered.objects}


def record_snapshots(instance: Instance, objects: list[dict]) -> None:
    """Store the rollout state of each workload (one row per component, updated in place)."""
    now = timezone.now()
    for obj in objects:
        state = workload_status(obj)
        containers = (pod_spec(obj) or {}).get("containers", [])
        rollout = RolloutState.DONE if state.done else RolloutState.PROGRESSING
        rollout = RolloutState.FAILED if state.failed else rollout
        RolloutSnapshot.objects.update_or_create(
            instance=instance,
            kind=obj["kind"],
            component=obj["metadata"]["name"],
            defaults={
                "desired": state.desired,
                "updated": state.updated,
                "ready": state.ready,
                "available": state.available,
                "state": rollout,
                "message": state.message,
                "conditions": (obj.get("status") or {}).get("conditions") or [],
                "images": [c.get("image", "") for c in containers],
                "observed_at": now,
            },
        )
