"""Where a request goes: the static documents (discovery, OpenAPI, version), the resource a path names, and the
`Table` answer kubectl asks for."""

from __future__ import annotations

from . import resources as discovery
from .errors import ApiError
from .resources import BY_KEY, ResourceType
from .transport import Request


def static_document(path: str, server_address: str) -> dict | None:
    """Discovery, OpenAPI, version and health documents, or None when ``path`` is not one of them."""
    if path == "/version":
        return discovery.version_info()
    if path == "/api":
        return discovery.api_versions(server_address)
    if path == "/apis":
        return discovery.api_group_list()
    if path == "/openapi/v3":
        return discovery.openapi_v3_root()
    if path.startswith("/openapi/v3/"):
        return discovery.openapi_v3_for_path(path.removeprefix("/openapi/v3/"))
    if path == "/api/v1":
        return discovery.api_resource_list("v1")
    parts = path.strip("/").split("/")
    if parts[0] == "apis" and len(parts) == 2:
        return discovery.api_group(parts[1])
    if parts[0] == "apis" and len(parts) == 3:
        return discovery.api_resource_list(f"{parts[1]}/{parts[2]}")
    if path in ("/healthz", "/livez", "/readyz"):
        return {"status": "ok"}
    return None


def route(path: str) -> tuple[ResourceType, str, str, str]:
    """`/apis/apps/v1/namespaces/ns/deployments/web/status` → (deployments, "ns", "web", "status")."""
    parts = path.strip("/").split("/")
    missing = ApiError(404, "NotFound", "the server could not find the requested resource")
    if parts[0] == "api" and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise missing
    namespace = ""
    # /namespaces/<ns>/<plural>/... is a namespaced path; /namespaces/<name>/status is the namespace itself.
    if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] == "status"):
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3 or not all(rest):
        raise missing
    rtype = BY_KEY.get((group, version, rest[0]))
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if rtype is None or (namespace and not rtype.namespaced) or (rtype.namespaced and name and not namespace):
        raise missing
    if subresource and (subresource != "status" or not rtype.has_status):
        raise missing
    return rtype, namespace, name, subresource


def table_of(request: Request, items: list[dict]) -> dict | None:
    """kubectl asks for `as=Table`: answer with the name/creation table that the API server gives kinds it
    has no printer for (custom resources). None when the client wants plain objects."""
    if "as=Table" not in (request.headers.get("Accept") or ""):
        return None
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0},
            {"name": "Created At", "type": "date", "format": "", "description": "Creation time", "priority": 0},
        ],
        "rows": [
            {
                "cells": [obj["metadata"]["name"], obj["metadata"].get("creationTimestamp")],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj["metadata"],
                },
            }
            for obj in items
        ],
    }
