"""The in-memory object store behind the Kubernetes emulator: API semantics without HTTP.

What it does like the API server:
- metadata: `uid`, `creationTimestamp`, a global `resourceVersion` counter, `generation` bumped only when
  something other than metadata and status changes, one `managedFields` entry per (manager, operation,
  subresource) with operation `Apply` or `Update`;
- a write that changes nothing is not a write: same `resourceVersion`, no watch event, no `write_count`;
- status subresource: writes to `/status` change only `status`, other writes keep the stored `status`
  (except a POST create, which keeps the posted one so that tests can seed objects);
- optimistic concurrency: a write carrying a stale `metadata.resourceVersion` gets 409 Conflict;
- server-side apply: upsert; a manager's applied fields are tracked as leaf paths (maps walked into, lists
  atomic), fields it applied before and no longer applies are removed unless another manager owns them, and
  applying a field another manager owns with a different value is a 409 conflict unless `force` is set;
- namespaces: objects can only be created in an existing, non-terminating namespace, and deleting a
  namespace deletes everything in it. That cascade is the namespace controller's job in a real cluster; it is
  emulated here on purpose, with an optional `Terminating` phase lasting `namespace_termination_seconds`;
- Secrets: `stringData` is folded into base64 `data` on every write, and never stored;
- a bounded event history for watches; a watch from a version older than the history gets 410 Gone.

What it deliberately does not do: defaulting and schema validation (beyond names), finalizers, owner-reference
garbage collection, controllers (no ReplicaSets or Pods appear; Jobs complete and CronJobs fire only when
`kubesim.controllers` or a test plays the controller), `deletecollection`, list pagination (`limit` is ignored,
everything is returned).
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ApiError, bad_request, details_of, invalid, not_found, stale
from .fields import ManagerKey, fold_string_data, managers_of, now, render_managers, tracked
from .patch import (
    Path,
    delete_path,
    drop_nulls,
    get_path,
    leaf_paths,
    merge_patch,
    overlaps,
)
from .resources import BY_KEY, NAMESPACES, ResourceType

Matcher = Callable[[dict], bool]

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class Event:
    """One change, as a watch reports it; `previous` lets a selector watch turn MODIFIED into ADDED/DELETED."""

    resource_version: int
    resource: tuple[str, str, str]
    type: str
    object: dict
    previous: dict | None


class Store:
    """Thread-safe objects keyed by (group, version, plural, namespace, name), plus the watch history."""

    def __init__(self, *, namespace_termination_seconds: float = 0.0, history: int = 10_000):
        self.namespace_termination_seconds = namespace_termination_seconds
        self.changed = threading.Condition(threading.RLock())
        self.write_count = 0
        self._objects: dict[tuple[str, str, str, str, str], dict] = {}
        # Indexes, so that a list or a namespace deletion costs what it returns, not the size of the store:
        # resource type -> namespace -> keys, and namespace -> keys.
        self._by_type: dict[tuple[str, str, str], dict[str, set[tuple]]] = defaultdict(lambda: defaultdict(set))
        self._by_namespace: dict[str, set[tuple]] = defaultdict(set)
        self._rv = 0
        self._events: deque[Event] = deque(maxlen=history)
        self._forgotten_until = 0  # events up to this version fell out of the history
        self._timers: list[threading.Timer] = []
        self.closed = False

    @property
    def resource_version(self) -> int:
        return self._rv

    def close(self) -> None:
        with self.changed:
            self.closed = True
            for timer in self._timers:
                timer.cancel()
            self.changed.notify_all()

    # --- reads -----------------------------------------------------------------------------------------------

    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict:
        with self.changed:
            obj = self._objects.get((*rtype.key, namespace, name))
            if obj is None:
                raise not_found(rtype, name)
            return copy.deepcopy(obj)

    def list(self, rtype: ResourceType, namespace: str, matches: Matcher) -> tuple[list[dict], int]:
        """Objects of one type, in one namespace or all (`namespace=""`), sorted like etcd keys."""
        with self.changed:
            collections = self._by_type.get(rtype.key, {})
            if namespace:
                keys = sorted(collections.get(namespace, ()))
            else:
                keys = sorted(key for keys in collections.values() for key in keys)
            items = [copy.deepcopy(self._objects[key]) for key in keys if matches(self._objects[key])]
            return items, self._rv

    def events_after(self, resource: tuple[str, str, str], resource_version: int) -> tuple[list[Event], int]:
        """Events on one resource type after a version, and the version they go up to."""
        with self.changed:
            if resource_version < self._forgotten_until:
                raise ApiError(410, "Expired", f"too old resource version: {resource_version} ({self._rv})")
            # Newest first, stopping at the version asked for: the cost is the events since, not the history.
            events = []
            for event in reversed(self._events):
                if event.resource_version <= resource_version:
                    break
                if event.resource == resource:
                    events.append(event)
            events.reverse()
            return events, self._rv

    def wait_for_change(self, resource_version: int, timeout: float) -> None:
        """Block until a write after `resource_version`, the store closes, or `timeout` passes."""
        with self.changed:
            self.changed.wait_for(lambda: self._rv > resource_version or self.closed, timeout=max(timeout, 0))

    # --- writes ----------------------------------------------------------------------------------------------

    def create(self, rtype: ResourceType, namespace: str, body: dict, manager: str, *, dry_run=False) -> dict:
        """POST: 201 semantics; the posted status is kept (tests seed objects this way)."""
        obj = self._prepare_body(rtype, namespace, body, url_name=None)
        meta = obj["metadata"]
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise invalid(rtype, "", "metadata.name: Required value: name or generateName is required")
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        with self.changed:
            return self._insert(rtype, obj, {(manager, "Update", ""): self._owned(rtype, obj, "")}, dry_run)

    def replace(self, rtype, namespace, name, body, manager, *, subresource="", dry_run=False) -> dict:
        """PUT: replace the whole object (or only its status through `/status`)."""
        new = self._prepare_body(rtype, namespace, body, url_name=name)
        with self.changed:
            old = self._existing(rtype, namespace, name)
            self._check_precondition(rtype, old, new)
            return self._update(rtype, old, new, (manager, "Update", subresource), dry_run)

    def patch(self, rtype, namespace, name, patcher, manager, *, subresource="", dry_run=False) -> dict:
        """PATCH (merge / JSON / strategic): `patcher(current) -> patched` runs under the store lock."""
        with self.changed:
            old = self._existing(rtype, namespace, name)
            new = patcher(copy.deepcopy(old))
            if not isinstance(new, dict):
                raise bad_request("the patch does not produce an object")
            new = self._prepare_body(rtype, namespace, new, url_name=name)
            self._check_precondition(rtype, old, new)
            return self._update(rtype, old, new, (manager, "Update", subresource), dry_run)

    def apply(self, rtype, namespace, name, config, manager, *, force, subresource="", dry_run=False):
        """Server-side apply; returns (object, created)."""
        config = self._prepare_body(rtype, namespace, drop_nulls(config), url_name=name, require_type=True)
        me = (manager, "Apply", subresource)
        applied = {p: v for p, v in leaf_paths(config).items() if tracked(rtype, subresource, p)}
        if subresource == "status":
            scoped = {"status": config.get("status") or {}}
        else:
            scoped = {k: v for k, v in config.items() if not (k == "status" and rtype.has_status)}
        with self.changed:
            old = self._objects.get((*rtype.key, namespace, name))
            if old is None:
                if subresource:
                    raise not_found(rtype, name)
                return self._insert(rtype, scoped, {me: set(applied)}, dry_run), True
            self._check_precondition(rtype, old, config)
            owners = {key: paths for key, (paths, _, _) in managers_of(old).items()}
            self._resolve_conflicts(rtype, old, owners, me, applied, force)
            result = copy.deepcopy(old)
            others = [p for key, paths in owners.items() if key != me for p in paths]
            for path in owners.get(me, set()) - set(applied):
                if not any(overlaps(path, other) for other in others):
                    delete_path(result, path)
            result = merge_patch(result, scoped)
            owners[me] = set(applied)
            return self._commit(rtype, old, result, owners, dry_run), False

    def delete(self, rtype: ResourceType, namespace: str, name: str, *, dry_run=False) -> dict:
        with self.changed:
            obj = self._existing(rtype, namespace, name)
            if dry_run:
                return obj
            if rtype is NAMESPACES:
                return self._delete_namespace(obj)
            return self._remove(rtype, obj)

    # --- internals (called with the lock held) ----------------------------------------------------------------

    def _prepare_body(self, rtype, namespace, body, *, url_name, require_type=False) -> dict:
        """Check the body against the URL, fill apiVersion/kind/namespace, drop server-owned metadata."""
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON or YAML object")
        obj = copy.deepcopy(body)
        for field, expected in (("apiVersion", rtype.group_version), ("kind", rtype.kind)):
            if obj.get(field) not in (None, "", expected):
                raise bad_request(f"the {field} in the data ({obj[field]}) does not match the expected {expected}")
            if require_type and not obj.get(field):
                raise bad_request(f"{field} must be set in an apply configuration")
            obj[field] = expected
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if url_name is not None:
            if meta.get("name") not in (None, url_name):
                raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL")
            meta["name"] = url_name
        if rtype.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        for field in ("uid", "creationTimestamp", "generation", "managedFields", "deletionTimestamp", "selfLink"):
            meta.pop(field, None)
        return obj

    def _existing(self, rtype: ResourceType, namespace: str, name: str) -> dict:
        obj = self._objects.get((*rtype.key, namespace, name))
        if obj is None:
            raise not_found(rtype, name)
        return obj

    @staticmethod
    def _check_precondition(rtype: ResourceType, old: dict, new: dict) -> None:
        wanted = (new.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise stale(rtype, old["metadata"]["name"])

    @staticmethod
    def _owned(rtype: ResourceType, obj: dict, subresource: str) -> set[Path]:
        return {p for p in leaf_paths(obj) if tracked(rtype, subresource, p)}

    def _check_namespace(self, rtype: ResourceType, namespace: str) -> None:
        if not rtype.namespaced:
            return
        ns = self._objects.get((*NAMESPACES.key, "", namespace))
        if ns is None:
            raise not_found(NAMESPACES, namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f'{rtype.qualified_plural} "{namespace}" is forbidden: unable to create new content in namespace '
                f"{namespace} because it is being terminated",
            )

    def _insert(self, rtype: ResourceType, obj: dict, owners: dict, dry_run: bool) -> dict:
        fold_string_data(rtype, obj)
        meta = obj["metadata"]
        name, namespace = meta["name"], meta.get("namespace", "")
        pattern = _DNS_LABEL if rtype is NAMESPACES else _DNS_SUBDOMAIN
        if len(name) > (63 if rtype is NAMESPACES else 253) or not pattern.match(name):
            raise invalid(rtype, name, f'metadata.name: Invalid value: "{name}": must be a lowercase RFC 1123 name')
        self._check_namespace(rtype, namespace)
        key = (*rtype.key, namespace, name)
        if key in self._objects:
            raise ApiError(
                409, "AlreadyExists", f'{rtype.qualified_plural} "{name}" already exists', details_of(rtype, name)
            )
        if rtype is NAMESPACES:
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}
        meta.pop("resourceVersion", None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
        meta["managedFields"] = render_managers(None, owners, rtype.group_version)
        if dry_run:
            return obj
        self._store(rtype, key, obj, "ADDED", None)
        return copy.deepcopy(obj)

    def _update(self, rtype: ResourceType, old: dict, new: dict, me: ManagerKey, dry_run: bool) -> dict:
        """PUT/PATCH: keep what the (sub)resource may not change, give the writer the fields it changed."""
        subresource = me[2]
        if subresource == "status":
            result = copy.deepcopy(old)
            result.pop("status", None)
            if new.get("status") is not None:
                result["status"] = new["status"]
        else:
            result = new
            if rtype.has_status:
                result.pop("status", None)
                if "status" in old:
                    result["status"] = copy.deepcopy(old["status"])
        before, after = leaf_paths(old), leaf_paths(result)
        changed = {p for p, v in after.items() if before.get(p, object()) != v and tracked(rtype, subresource, p)}
        removed = {p for p in before if p not in after}
        owners = {key: paths for key, (paths, _, _) in managers_of(old).items()}
        for key, paths in owners.items():
            owners[key] = {p for p in paths if not any(overlaps(p, q) for q in changed | removed)}
        owners[me] = owners.get(me, set()) | changed
        return self._commit(rtype, old, result, owners, dry_run)

    @staticmethod
    def _resolve_conflicts(rtype, old: dict, owners: dict, me: ManagerKey, applied: dict, force: bool) -> None:
        """Apply conflicts: another manager owns a field that this apply sets to a different value."""
        conflicts = []
        for key, paths in owners.items():
            if key == me:
                continue
            taken = {q for q in paths for p, v in applied.items() if overlaps(p, q) and get_path(old, p)[1] != v}
            if taken:
                conflicts.extend((key[0], q) for q in sorted(taken))
                if force:
                    owners[key] = paths - taken
        if conflicts and not force:
            described = "; ".join(f'conflict with "{manager}": .{".".join(path)}' for manager, path in conflicts)
            raise ApiError(
                409,
                "Conflict",
                f"Apply failed with {len(conflicts)} conflict{'s' if len(conflicts) > 1 else ''}: {described}",
                {**details_of(rtype, old["metadata"]["name"]), "causes": [{"reason": "FieldManagerConflict"}]},
            )

    def _commit(self, rtype: ResourceType, old: dict, result: dict, owners: dict, dry_run: bool) -> dict:
        """Finish an update: server-owned metadata, generation, managedFields; skip it entirely if nothing moved."""
        meta = result.setdefault("metadata", {})
        for field in ("uid", "creationTimestamp", "generation", "resourceVersion", "deletionTimestamp"):
            if field in old["metadata"]:
                meta[field] = old["metadata"][field]
        for section in ("apiVersion", "kind"):
            result[section] = old[section]
        meta["managedFields"] = render_managers(old, owners, rtype.group_version)
        fold_string_data(rtype, result)

        def content(obj: dict) -> dict:
            return {k: v for k, v in obj.items() if k not in ("metadata", "status")}

        if content(result) != content(old):
            meta["generation"] = old["metadata"].get("generation", 1) + 1
        if result == old:
            return copy.deepcopy(old)  # a no-op write: no new resourceVersion, no event
        if dry_run:
            return result
        key = (*rtype.key, meta.get("namespace", ""), meta["name"])
        self._store(rtype, key, result, "MODIFIED", old)
        return copy.deepcopy(result)

    def _store(self, rtype: ResourceType, key: tuple, obj: dict, event_type: str, previous: dict | None) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._objects[key] = obj
        self._by_type[rtype.key][key[3]].add(key)
        self._by_namespace[key[3]].add(key)
        self._record(rtype, event_type, obj, previous)

    def _remove(self, rtype: ResourceType, obj: dict) -> dict:
        meta = obj["metadata"]
        key = (*rtype.key, meta.get("namespace", ""), meta["name"])
        del self._objects[key]
        # Emptied buckets go too: a long-lived sandbox sees many namespaces come and go.
        namespace = key[3]
        for index in (self._by_type[rtype.key], self._by_namespace):
            index[namespace].discard(key)
            if not index[namespace]:
                del index[namespace]
        self._rv += 1
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = str(self._rv)
        self._record(rtype, "DELETED", gone, None)
        return copy.deepcopy(obj)

    def _record(self, rtype: ResourceType, event_type: str, obj: dict, previous: dict | None) -> None:
        if len(self._events) == self._events.maxlen:
            self._forgotten_until = self._events[0].resource_version
        self._events.append(Event(self._rv, rtype.key, event_type, copy.deepcopy(obj), copy.deepcopy(previous)))
        self.write_count += 1
        self.changed.notify_all()

    def _delete_namespace(self, ns: dict) -> dict:
        """Mark the namespace Terminating, then (now or after a delay) delete its contents and itself."""
        if ns["metadata"].get("deletionTimestamp"):
            return copy.deepcopy(ns)
        if self.namespace_termination_seconds <= 0:
            self._finalize_namespace(ns["metadata"]["name"])
            return copy.deepcopy(ns)
        terminating = copy.deepcopy(ns)
        terminating["metadata"]["deletionTimestamp"] = now()
        terminating["status"] = {"phase": "Terminating"}
        self._store(NAMESPACES, (*NAMESPACES.key, "", ns["metadata"]["name"]), terminating, "MODIFIED", ns)
        timer = threading.Timer(self.namespace_termination_seconds, self._finalize_later, [ns["metadata"]["name"]])
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()
        return copy.deepcopy(terminating)

    def _finalize_later(self, name: str) -> None:
        with self.changed:
            if not self.closed:
                self._finalize_namespace(name)

    def _finalize_namespace(self, name: str) -> None:
        """The namespace controller's cascade: delete every namespaced object in it, then the namespace."""
        for key in sorted(self._by_namespace.get(name, ())):
            self._remove(BY_KEY[key[:3]], self._objects[key])
        ns = self._objects.get((*NAMESPACES.key, "", name))
        if ns is not None:
            self._remove(NAMESPACES, ns)
