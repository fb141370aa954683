"""From an instance and a version to rendered manifests, the diff against what was applied last, and the
approval preview (rendered once per request and kept until what it depends on changes)."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import yaml
from django.conf import settings
from django.utils.translation import gettext as _

from instances.choices import OperationStatus, RequestKind
from instances.engine.credentials import storage_port
from instances.kube.kustomize import KustomizeError
from instances.kube.names import InvalidSpec
from instances.kube.overlay import ImageRef, OverlaySpec
from instances.kube.render import RenderedManifests, SafeLoader, render
from instances.models import ApplicationVersion, ChangeRequest, Instance, Operation

logger = logging.getLogger(__name__)
BASES_DIR = Path(__file__).resolve().parent.parent / "bases"


def base_path(application) -> Path:
    """The application's Kustomize base, which must live under the portal's bases directory."""
    path = (BASES_DIR / application.kustomize_base).resolve()
    if BASES_DIR.resolve() not in path.parents:
        raise InvalidSpec(f"Kustomize base {application.kustomize_base!r} is outside {BASES_DIR}.")
    return path


def base_digest(root: Path) -> str:
    """A hash of the files of a base: a render depends on them. The files are read again only when one of them
    changed (its size or modification time), not on every page that shows a preview."""
    files = tuple(
        (str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns)
        for path in sorted(p for p in root.rglob("*") if p.is_file())
        for stat in (path.stat(),)
    )
    return _files_digest(str(root), files)


@functools.lru_cache(maxsize=32)
def _files_digest(root: str, files: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _size, _mtime in files:
        digest.update(name.encode() + b"\0" + (Path(root) / name).read_bytes() + b"\0")
    return digest.hexdigest()


def image_refs(instance: Instance, version: ApplicationVersion, images: Mapping | None = None) -> dict[str, dict]:
    """The images to deploy: those given (pinned at approval), else the version's as the registry last saw them
    (digests), else the application's map at the version's tag."""
    if images:
        return dict(images)
    return {**instance.application.image_refs(version.version), **(version.images or {})}


def spec_for(instance: Instance, version: ApplicationVersion, images: Mapping | None = None) -> OverlaySpec:
    """Everything particular to ``instance`` running ``version``, as the overlay generator wants it."""
    cluster = instance.cluster
    images = {
        placeholder: ImageRef(repository=ref["repository"], tag=ref.get("tag"), digest=ref.get("digest"))
        for placeholder, ref in image_refs(instance, version, images).items()
    }
    return OverlaySpec(
        instance=instance.slug,
        organisation=instance.organisation.slug,
        application=instance.application.slug,
        images=images,
        host=instance.hostname,
        tls_secret_name=f"{instance.slug}-tls",
        tls_cluster_issuer=cluster.tls_cluster_issuer if cluster else "",
        ingress_class=cluster.ingress_class if cluster else "nginx",
        ingress_controller_namespace=cluster.ingress_namespace if cluster else "ingress-nginx",
        size=instance.size,
        settings=instance.settings or {},
        timemachine_schedule=instance.backup_schedule,
        timemachine_time_zone=settings.TIME_ZONE,
        backup_storage_port=storage_port(settings.PORTAL_BACKUP_S3_ENDPOINT),
        backup_storage_cidrs=tuple(settings.PORTAL_BACKUP_S3_CIDRS),
        pod_security_version=settings.PORTAL_POD_SECURITY_VERSION,
        namespace_prefix=settings.PORTAL_NAMESPACE_PREFIX,
        base_path=base_path(instance.application),
    )


def render_instance(
    instance: Instance, version: ApplicationVersion, images: Mapping | None = None
) -> RenderedManifests:
    return render(spec_for(instance, version, images))


def last_applied(instance: Instance) -> Operation | None:
    """The last operation that applied manifests to the cluster and succeeded."""
    return (
        Operation.objects.filter(instance=instance, status=OperationStatus.SUCCEEDED)
        .exclude(manifests="")
        .order_by("-finished_at", "-id")
        .first()
    )


def manifests_of(operation: Operation) -> RenderedManifests:
    """What ``operation`` applied, as rendered manifests again (a rollback, or a restore scaling back up)."""
    objects = [obj for obj in yaml.load_all(operation.manifests, Loader=SafeLoader) if obj]
    return RenderedManifests(objects=objects, yaml=operation.manifests, sha256=operation.manifests_sha256)


def diff(old: str, new: str, old_label: str = "applied", new_label: str = "rendered") -> str:
    """A unified diff of two multi-document YAML texts ("" when identical)."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=old_label, tofile=new_label, n=3
        )
    )


def object_digest(obj: dict) -> str:
    """A hash of one rendered object: when it is the one recorded for the last apply, the object is unchanged."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# --- the approval preview ------------------------------------------------------------------------------------


def preview_key(spec: OverlaySpec, last: Operation | None) -> str:
    """What a preview depends on: everything the render is given (the spec: version, images, the instance's
    settings, its cluster's ingress...), the files of its base, and the manifests applied last. Derived from the
    render's own input, so that no change to it leaves a stale preview; when the key changes, the preview is
    rendered again."""
    fields = {field.name: getattr(spec, field.name) for field in dataclasses.fields(spec)}
    parts = [
        base_digest(spec.base_path),
        json.dumps(fields, sort_keys=True, default=_spec_value),
        str(last.pk if last else 0),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _spec_value(value) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, ImageRef):
        return value.reference
    return str(value)  # a path


def preview(change_request: ChangeRequest) -> dict:
    """What approving an upgrade would change on the cluster: the diff of the manifests it would render.

    Rendered once and stored on the request with its key; rendered again only when the key changes. Any
    failure (a broken base, invalid settings) is reported as text rather than breaking the page.
    """
    if change_request.kind == RequestKind.CREATE or not change_request.instance_id:
        return {"unavailable": _("The instance does not exist yet: everything will be created.")}
    last = last_applied(change_request.instance)
    try:
        spec = spec_for(change_request.instance, change_request.target_version, change_request.images)
        key = preview_key(spec, last)
    except (InvalidSpec, OSError) as exc:
        return {"error": _("Preview unavailable: %(message)s") % {"message": exc}}
    stored = change_request.preview or {}
    if stored.get("key") != key:
        try:
            rendered = render(spec)
            stored = {
                "key": key,
                "diff": diff(last.manifests if last else "", rendered.yaml),
                "sha256": rendered.sha256,
                "first": last is None,
            }
        except (KustomizeError, InvalidSpec) as exc:
            stored = {"key": key, "error": str(exc)}
        except Exception as exc:  # the request page must show, whatever went wrong in the render
            logger.exception("preview of request %s failed", change_request.pk)
            return {"error": _("Preview unavailable: %(message)s") % {"message": exc}}
        ChangeRequest.objects.filter(pk=change_request.pk).update(preview=stored)
        change_request.preview = stored
    if "error" in stored:
        return {"error": _("Preview unavailable: %(message)s") % {"message": stored["error"]}}
    return {key: stored[key] for key in ("diff", "sha256", "first")}


def render_preview(request_pk: int) -> str:
    """The job run when a request is filed, so that the reviewer's first look costs no render."""
    change_request = (
        ChangeRequest.objects.select_related(
            "instance__application", "instance__organisation", "instance__cluster", "target_version"
        )
        .filter(pk=request_pk)
        .first()
    )
    if change_request is None or change_request.kind != RequestKind.UPDATE:
        return "no preview"
    result = preview(change_request)
    return "preview ready" if "diff" in result else "no preview"
