"""Rendering an instance with the real Kustomize: base plus generated overlay, sorted and hashed.

The rendered output (``RenderedManifests``) is sorted deterministically, so the same spec always gives the same
YAML and the same sha256 — the hash recorded on each operation to tell whether anything changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from instances.kube.kinds import sort_key
from instances.kube.kustomize import Kustomize
from instances.kube.names import InvalidSpec
from instances.kube.overlay import NAMESPACE_FILE, OverlaySpec, build_kustomization, build_namespace

# libyaml's C implementation when PyYAML has it: parsing and writing manifests is most of a render's Python time.
_SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ManifestDumper(_SafeDumper):
    """Safe dumper writing multi-line strings (scripts, settings) as literal blocks, for people reading the
    stored manifests. PyYAML falls back to a quoted style whenever a block cannot represent the string."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ManifestDumper.add_representer(str, _represent_str)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_ManifestDumper, sort_keys=True, default_flow_style=False, allow_unicode=False)


def _dump_all(documents: list[Any]) -> str:
    return yaml.dump_all(
        documents, Dumper=_ManifestDumper, sort_keys=True, default_flow_style=False, allow_unicode=False
    )


def write_overlay(spec: OverlaySpec, directory: str | os.PathLike[str]) -> Path:
    """Write the overlay (kustomization.yaml + namespace.yaml) into `directory` and return that directory.

    The base is referenced by its path relative to `directory`, as Kustomize wants for local resources.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    base_reference = Path(os.path.relpath(spec.base_path.resolve(), directory.resolve())).as_posix()
    (directory / "kustomization.yaml").write_text(_dump(build_kustomization(spec, base_reference)), "utf-8")
    (directory / NAMESPACE_FILE).write_text(_dump(build_namespace(spec)), "utf-8")
    return directory


@dataclass(frozen=True)
class RenderedManifests:
    """The objects of one instance as Kustomize rendered them, in apply order, with their YAML and its hash."""

    objects: list[dict[str, Any]]
    yaml: str
    sha256: str

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """The rendered object of this kind and name; KeyError if there is none."""
        for obj in self.objects:
            if obj["kind"] == kind and obj["metadata"]["name"] == name:
                return obj
        raise KeyError(f"{kind}/{name}")


def pod_spec(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod spec inside a workload object (Deployment, StatefulSet, Job, CronJob, ...), or None."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template")
    return (template or {}).get("spec") if isinstance(template, Mapping) else None


def _check_images(spec: OverlaySpec, objects: list[dict[str, Any]]) -> None:
    # A placeholder without a mapping would stay e.g. "smile-core" and be pulled from Docker Hub; refuse.
    expected = {ref.reference for ref in spec.images.values()}
    for obj in objects:
        pod = pod_spec(obj) or {}
        for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            if container.get("image") not in expected:
                raise InvalidSpec(
                    f"Container {container.get('name')!r} of {obj['kind']}/{obj['metadata']['name']} uses image "
                    f"{container.get('image')!r}, which the overlay's images do not map; "
                    f"mapped placeholders: {', '.join(spec.images)}."
                )


def render(spec: OverlaySpec, *, kustomize: Kustomize | None = None) -> RenderedManifests:
    """Render the instance with Kustomize: the base is copied next to the generated overlay in a temporary
    directory (a snapshot, so a concurrent edit of the base cannot give a half-old render), then built.

    Raises KustomizeError when Kustomize fails (e.g. a broken base), ValueError when an image placeholder
    of the base is left unmapped.
    """
    kustomize = kustomize or Kustomize()
    with tempfile.TemporaryDirectory(prefix="saas-portal-render-") as tmp:
        root = Path(tmp)
        base_copy = root / "base"
        if spec.base_path.is_dir():
            shutil.copytree(spec.base_path, base_copy)
        # When the base is missing the reference still points at root/base, so Kustomize reports it.
        overlay_dir = write_overlay(replace(spec, base_path=base_copy), root / "overlay")
        output = kustomize.build(overlay_dir)

    objects = sorted((obj for obj in yaml.load_all(output, Loader=SafeLoader) if obj), key=sort_key)
    _check_images(spec, objects)
    text = _dump_all(objects)
    return RenderedManifests(objects=objects, yaml=text, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())
