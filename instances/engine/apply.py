"""Bringing the cluster to the rendered manifests with the fewest API requests.

The instance records every object it last applied (key -> hash of the manifest, resourceVersion). An apply
sends one server-side apply PATCH for each object whose manifest changed since — nothing for the others — and
lists the namespace to prune only when the set of objects changed. A first apply, a drift seen by the status
sync, or a maintainer's full resync sends everything, creates the generated Secrets and prunes.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.utils import timezone

from core.messages import msg
from instances.choices import RolloutState
from instances.engine.log import OperationLog
from instances.engine.rendering import object_digest
from instances.kube.client import ApplyResult, ClusterClient
from instances.kube.kinds import WORKLOAD_KINDS, identity_labels, instance_match_labels, object_key
from instances.kube.render import RenderedManifests, pod_spec
from instances.kube.rollout import workload_status
from instances.models import Instance, RolloutSnapshot

DATABASE_SECRET = "smile-database"
BACKUP_SECRET = "smile-timemachine-s3"


def instance_labels(instance: Instance) -> dict[str, str]:
    """The labels the overlay puts on every object of the instance (the secrets and backup Jobs get them too)."""
    return identity_labels(
        application=instance.application.slug, instance=instance.slug, organisation=instance.organisation.slug
    )


def ensure_secrets(client: ClusterClient, instance: Instance, log: OperationLog) -> None:
    """Create the instance's secrets once. They are never rendered, never shown, and never rotated by an apply."""
    if client.create_if_absent(_secret(instance, DATABASE_SECRET, {"password": secrets.token_urlsafe(32)})):
        log(msg("generated the database password (Secret %(name)s)"), name=DATABASE_SECRET)
    storage = {
        "endpoint": settings.PORTAL_BACKUP_S3_ENDPOINT,
        "bucket": settings.PORTAL_BACKUP_S3_BUCKET,
        "region": settings.PORTAL_BACKUP_S3_REGION,
        "access-key-id": settings.PORTAL_BACKUP_S3_ACCESS_KEY_ID,
        "secret-access-key": settings.PORTAL_BACKUP_S3_SECRET_ACCESS_KEY,
    }
    if client.create_if_absent(_secret(instance, BACKUP_SECRET, storage)):
        log(msg("created the backup storage credentials (Secret %(name)s)"), name=BACKUP_SECRET)


def _secret(instance: Instance, name: str, data: dict[str, str]) -> dict:
    metadata = {"name": name, "namespace": instance.namespace, "labels": instance_labels(instance)}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "Opaque", "stringData": data}


def workload_images(objects: list[dict]) -> dict[str, list[str]]:
    """kind/name -> container images of every Deployment and StatefulSet (what drift is measured against)."""
    return {
        f"{o['kind']}/{o['metadata']['name']}": sorted(
            c.get("image", "") for c in (pod_spec(o) or {}).get("containers", [])
        )
        for o in objects
        if o["kind"] in WORKLOAD_KINDS
    }


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
    if full:
        ensure_secrets(client, instance, log)
    others = [o for o in changed if o["kind"] != "Namespace"]
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
