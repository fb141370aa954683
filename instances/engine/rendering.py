"""From an instance and a version to rendered manifests, and the diff against what was applied last."""

from __future__ import annotations

import difflib
from pathlib import Path

from django.conf import settings

from instances.choices import OperationStatus
from instances.kube.overlay import ImageRef, OverlaySpec, RenderedManifests, render
from instances.models import ApplicationVersion, Instance, Operation

BASES_DIR = Path(__file__).resolve().parent.parent / "bases"


def base_path(application) -> Path:
    """The application's Kustomize base, which must live under the portal's bases directory."""
    path = (BASES_DIR / application.kustomize_base).resolve()
    if BASES_DIR.resolve() not in path.parents:
        raise ValueError(f"Kustomize base {application.kustomize_base!r} is outside {BASES_DIR}.")
    return path


def spec_for(instance: Instance, version: ApplicationVersion) -> OverlaySpec:
    """Everything particular to ``instance`` running ``version``, as the overlay generator wants it."""
    cluster = instance.cluster
    images = {
        placeholder: ImageRef(repository=ref["repository"], tag=ref.get("tag"), digest=ref.get("digest"))
        for placeholder, ref in instance.application.image_refs(version.version).items()
    }
    return OverlaySpec(
        instance=instance.slug,
        organisation=instance.organisation.slug,
        application=instance.application.slug,
        images=images,
        host=instance.hostname,
        tls_secret_name=f"{instance.slug}-tls",
        ingress_class=cluster.ingress_class if cluster else "nginx",
        ingress_controller_namespace=cluster.ingress_namespace if cluster else "ingress-nginx",
        size=instance.size,
        settings=instance.settings or {},
        timemachine_schedule=instance.backup_schedule,
        timemachine_time_zone=settings.TIME_ZONE,
        namespace_prefix=settings.PORTAL_NAMESPACE_PREFIX,
        base_path=base_path(instance.application),
    )


def render_instance(instance: Instance, version: ApplicationVersion) -> RenderedManifests:
    return render(spec_for(instance, version))


def last_applied(instance: Instance) -> Operation | None:
    """The last operation that applied manifests to the cluster and succeeded."""
    return (
        Operation.objects.filter(instance=instance, status=OperationStatus.SUCCEEDED)
        .exclude(manifests="")
        .order_by("-finished_at", "-id")
        .first()
    )


def diff(old: str, new: str, old_label: str = "applied", new_label: str = "rendered") -> str:
    """A unified diff of two multi-document YAML texts ("" when identical)."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=old_label, tofile=new_label, n=3
        )
    )
