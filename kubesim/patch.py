"""Patch formats and field paths for the Kubernetes emulator.

- JSON merge patch (RFC 7386) and JSON patch (RFC 6902), implemented fully.
- Strategic merge patch is treated as a merge patch after dropping its `$...` directives: lists are replaced
  as a whole instead of merged by key (e.g. containers by name). Callers that need list merging must send
  the complete list, which is what server-side apply users do anyway.
- Field paths: an object is seen as the set of its leaf paths, where maps are walked into and lists are atomic
  leaves. Server-side apply ownership (see `kubesim.store`) is tracked on these paths, and they are rendered
  in `managedFields` as `fieldsV1` trees (`{"f:spec": {"f:replicas": {}}}`), without the `k:`/`v:` list keys of
  a real server.
"""

from __future__ import annotations

import copy
from typing import Any

Path = tuple[str, ...]


class PatchError(ValueError):
    """A well-formed patch that cannot be applied (HTTP 422 Invalid, like the API server)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge recursively, `null` deletes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strip_strategic_directives(patch: Any) -> Any:
    """Drop `$patch`, `$retainKeys`, `$setElementOrder/...` and friends so the rest reads as a merge patch."""
    if isinstance(patch, dict):
        return {k: strip_strategic_directives(v) for k, v in patch.items() if not k.startswith("$")}
    if isinstance(patch, list):
        return [strip_strategic_directives(v) for v in patch]
    return patch


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [token.replace("~1", "/").replace("~0", "~") for token in path[1:].split("/")]


def _index(container: list, token: str, *, for_insert: bool = False) -> int:
    if for_insert and token == "-":
        return len(container)
    if not token.isdigit():
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    if index > len(container) or (index == len(container) and not for_insert):
        raise PatchError(f"array index {index} out of range")
    return index


def _resolve(doc: Any, tokens: list[str]) -> Any:
    for token in tokens:
        if isinstance(doc, dict):
            if token not in doc:
                raise PatchError(f"missing path element {token!r}")
            doc = doc[token]
        elif isinstance(doc, list):
            doc = doc[_index(doc, token)]
        else:
            raise PatchError(f"cannot descend into a scalar at {token!r}")
    return doc


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1])
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, tokens[-1], for_insert=True), value)
    else:
        raise PatchError("cannot add to a scalar")
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _resolve(doc, tokens[:-1])
    if isinstance(parent, dict):
        if tokens[-1] not in parent:
            raise PatchError(f"cannot remove missing key {tokens[-1]!r}")
        return parent.pop(tokens[-1])
    if isinstance(parent, list):
        return parent.pop(_index(parent, tokens[-1]))
    raise PatchError("cannot remove from a scalar")


def json_patch(document: Any, operations: Any) -> Any:
    """RFC 6902 on a copy of `document`; any failing operation fails the whole patch."""
    if not isinstance(operations, list):
        raise ValueError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(document)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise ValueError(f"invalid JSON patch operation: {operation!r}")
        op, tokens = operation["op"], _pointer(operation["path"])
        if op in ("add", "replace", "test") and "value" not in operation:
            raise ValueError(f"JSON patch operation {op!r} needs a value")
        if op == "add":
            doc = _add(doc, tokens, copy.deepcopy(operation["value"]))
        elif op == "remove":
            _remove(doc, tokens)
        elif op == "replace":
            _resolve(doc, tokens)  # must exist
            if tokens:
                _remove(doc, tokens)
            doc = _add(doc, tokens, copy.deepcopy(operation["value"]))
        elif op in ("move", "copy"):
            source = _pointer(operation.get("from", ""))
            value = _remove(doc, source) if op == "move" else copy.deepcopy(_resolve(doc, source))
            doc = _add(doc, tokens, value)
        elif op == "test":
            if _resolve(doc, tokens) != operation["value"]:
                raise PatchError(f"test operation failed at {operation['path']!r}")
        else:
            raise ValueError(f"unknown JSON patch operation {op!r}")
    return doc


def drop_nulls(value: Any) -> Any:
    """Remove `null` map values (in an apply configuration they mean "no opinion")."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def leaf_paths(obj: Any, prefix: Path = ()) -> dict[Path, Any]:
    """Every leaf of `obj` by path: maps are walked into (an empty map is a leaf), lists and scalars are leaves."""
    if isinstance(obj, dict) and obj:
        leaves: dict[Path, Any] = {}
        for key, value in obj.items():
            leaves.update(leaf_paths(value, (*prefix, key)))
        return leaves
    return {prefix: obj} if prefix else {}


def overlaps(a: Path, b: Path) -> bool:
    """True when one path is the other or lies inside it."""
    shortest = min(len(a), len(b))
    return a[:shortest] == b[:shortest]


def get_path(obj: Any, path: Path) -> tuple[bool, Any]:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return False, None
        obj = obj[key]
    return True, obj


def delete_path(obj: dict, path: Path) -> None:
    """Delete a leaf and then the maps that it leaves empty (as the API server does for unowned fields)."""
    parents = []
    node = obj
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            return
        parents.append((node, key))
        node = node[key]
    node.pop(path[-1], None)
    for parent, key in reversed(parents):
        if parent[key] or (parent is obj and key == "metadata"):
            break
        del parent[key]


def fields_v1(paths: set[Path]) -> dict:
    """Render paths as a `fieldsV1` tree."""
    tree: dict = {}
    for path in sorted(paths):
        node = tree
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return tree


def paths_from_fields_v1(tree: dict, prefix: Path = ()) -> set[Path]:
    """The inverse of `fields_v1` for the trees this emulator writes."""
    paths: set[Path] = set()
    for key, child in tree.items():
        if not key.startswith("f:"):
            continue
        path = (*prefix, key[2:])
        paths |= paths_from_fields_v1(child, path) if child else {path}
    return paths
