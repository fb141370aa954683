"""Server-side apply bookkeeping: which leaf paths a write may own, and `managedFields` in and out."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from .patch import Path, fields_v1, overlaps, paths_from_fields_v1
from .resources import ResourceType

ManagerKey = tuple[str, str, str]  # (manager, operation, subresource)

# Fields the server owns; they never appear in managedFields and a client cannot change them.
_SYSTEM_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "deletionTimestamp")
_UNTRACKED = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace"), ("metadata", "selfLink")}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tracked(rtype: ResourceType, subresource: str, path: Path) -> bool:
    """Is this leaf path part of what a write through this (sub)resource can own?"""
    if path[:1] == ("metadata",) and len(path) > 1 and path[1] in _SYSTEM_METADATA:
        return False
    if any(overlaps(path, untracked) for untracked in _UNTRACKED):
        return False
    if subresource == "status":
        return path[:1] == ("status",)
    return not (rtype.has_status and path[:1] == ("status",))


def managers_of(obj: dict | None) -> dict[ManagerKey, tuple[set[Path], str, str]]:
    """managedFields as {(manager, operation, subresource): (paths, time, apiVersion)}."""
    entries = {}
    for entry in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        key = (entry.get("manager", ""), entry.get("operation", ""), entry.get("subresource", ""))
        entries[key] = (paths_from_fields_v1(entry.get("fieldsV1") or {}), entry.get("time", ""), entry["apiVersion"])
    return entries


def render_managers(old: dict | None, owners: dict[ManagerKey, set[Path]], api_version: str) -> list[dict]:
    """managedFields entries; an entry keeps its time unless its field set changed."""
    previous = managers_of(old)
    rendered = []
    for (manager, operation, subresource), paths in owners.items():
        if not paths:
            continue
        old_paths, old_time, _ = previous.get((manager, operation, subresource), (None, "", ""))
        entry = {
            "manager": manager,
            "operation": operation,
            "apiVersion": api_version,
            "time": old_time if old_paths == paths else now(),
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_v1(paths),
        }
        if subresource:
            entry["subresource"] = subresource
        rendered.append(entry)
    return rendered


def fold_string_data(rtype: ResourceType, obj: dict) -> None:
    """Secrets: `stringData` is write-only, the API server stores it base64-encoded into `data`."""
    if rtype.kind == "Secret" and isinstance(obj.get("stringData"), dict):
        encoded = {k: base64.b64encode(str(v).encode()).decode() for k, v in obj.pop("stringData").items()}
        obj["data"] = {**(obj.get("data") or {}), **encoded}
