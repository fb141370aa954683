"""An HTTP Kubernetes API emulator for the tests and the `make run` sandbox.

No real API server can run on our machines, so the code that talks to clusters is exercised against this one:
the official `kubernetes` client and `kubectl` speak real HTTP to it. It serves discovery, CRUD with label and
field selectors, merge/JSON/strategic patches, server-side apply, `/status` subresources, watches and
namespace deletion; `kubesim.store` lists precisely what is emulated and what is deliberately not. The store
runs no controllers: tests play them by writing `/status` (`set_status`), or start `SimulatedControllers`.
Only the standard library and PyYAML are used.

    with KubernetesEmulator() as emulator:        # listening on 127.0.0.1 by default, random port
        client = ClusterClient.for_url(emulator.url)
        emulator.inject(method="PATCH", path_regex="/deployments/", status=500, times=1)
        assert emulator.write_count == 0

Run `python -m kubesim --port 8090` for a long-lived cluster with simulated controllers (see `__main__`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass

import yaml

from .errors import ApiError, bad_request
from .patch import PatchError, json_patch, merge_patch, strip_strategic_directives
from .resources import BY_KIND, ResourceType
from .routes import route, static_document, table_of
from .selection import SelectorError, field_matcher, label_matcher
from .store import Store
from .transport import Handler, Request, RequestRecord, Server

logger = logging.getLogger(__name__)

MAX_WATCH_SECONDS = 1800
# How long stop() lets open watches send their last chunk before it closes every connection.
STREAM_END_GRACE_SECONDS = 2.0
_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Gone",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass
class Fault:
    """An injected failure or delay for requests whose method and path match; `times=None` means forever."""

    method: str | None
    path_regex: str | None
    status: int | None = None
    delay: float = 0.0
    times: int | None = 1
    message: str = ""
    retry_after: int | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return not self.path_regex or re.search(self.path_regex, path) is not None


class KubernetesEmulator:
    """An in-memory Kubernetes API server, on 127.0.0.1 unless told otherwise (see the module docstring)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        namespace_termination_seconds: float = 0.0,
        namespaces: tuple[str, ...] = ("default", "kube-system", "kube-public"),
        history: int = 10_000,
        request_log_size: int = 100_000,
    ):
        self.store = Store(namespace_termination_seconds=namespace_termination_seconds, history=history)
        self._address = (host, port)
        self._initial_namespaces = namespaces
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        # Open watch streams, so that stop() lets them send their last chunk before it closes the connections.
        self._streams = 0
        self._streams_changed = threading.Condition()
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._requests: deque[RequestRecord] = deque(maxlen=request_log_size)  # bounded for the sandbox
        self.url = ""

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving in a background thread; returns the base URL (`http://127.0.0.1:<port>`)."""
        for name in self._initial_namespaces:
            self.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        self.reset_log()
        self._server = Server(self._address, self._serve, self._log)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=f"kube-emulator-{port}", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving: end watches and delays, close every client connection."""
        if self._server is None:
            return
        self._stopping.set()
        self.store.close()
        with self._streams_changed:
            self._streams_changed.wait_for(lambda: self._streams == 0, timeout=STREAM_END_GRACE_SECONDS)
        self._server.shutdown()
        with self._server.connections_lock:
            for connection in list(self._server.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> KubernetesEmulator:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- test helpers ----------------------------------------------------------------------------------------

    @property
    def write_count(self) -> int:
        """How many changes were stored (creates, real updates, deletes); no-op writes do not count."""
        return self.store.write_count

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def requests_matching(self, method: str | None = None, path_regex: str | None = None) -> list[RequestRecord]:
        probe = Fault(method, path_regex)
        return [r for r in self.requests if probe.matches(r.method, r.path)]

    def reset_log(self) -> None:
        """Forget the request log and reset `write_count` (e.g. after a test's set-up)."""
        with self._lock:
            self._requests.clear()
        with self.store.changed:
            self.store.write_count = 0

    def inject(
        self,
        *,
        method: str | None = None,
        path_regex: str | None = None,
        status: int = 500,
        times: int | None = 1,
        message: str = "injected failure",
        retry_after: int | None = None,
    ) -> None:
        """Answer the next `times` matching requests with an error Status (`times=None`: all of them)."""
        with self._lock:
            self._faults.append(Fault(method, path_regex, status, 0.0, times, message, retry_after))

    def inject_delay(
        self, seconds: float, *, method: str | None = None, path_regex: str | None = None, times: int | None = 1
    ) -> None:
        """Hold the next `times` matching requests for `seconds` before serving them (client timeouts)."""
        with self._lock:
            self._faults.append(Fault(method, path_regex, None, seconds, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def seed(self, obj: dict) -> dict:
        """Store an object directly (no HTTP, not logged as a request), e.g. a CronJob a test needs."""
        rtype = self.type_of(obj["apiVersion"], obj["kind"])
        return self.store.create(rtype, obj.get("metadata", {}).get("namespace", ""), obj, "emulator-seed")

    def get_object(self, api_version: str, kind: str, namespace: str, name: str) -> dict | None:
        try:
            return self.store.get(self.type_of(api_version, kind), namespace if namespace else "", name)
        except ApiError:
            return None

    def list_objects(self, api_version: str, kind: str, namespace: str = "") -> list[dict]:
        return self.store.list(self.type_of(api_version, kind), namespace, lambda obj: True)[0]

    def set_status(self, api_version: str, kind: str, namespace: str, name: str, status: dict) -> dict:
        """Play a controller: merge `status` into the object's status, as a `/status` patch would."""
        rtype = self.type_of(api_version, kind)
        subresource = "status" if rtype.has_status else ""

        def patcher(obj: dict) -> dict:
            return merge_patch(obj, {"status": status})

        return self.store.patch(rtype, namespace, name, patcher, "emulator-controller", subresource=subresource)

    def kubeconfig(self, namespace: str = "default") -> str:
        """A kubeconfig (YAML text) for kubectl or the official client, without credentials."""
        return kubeconfig_for(self.url, namespace)

    @staticmethod
    def type_of(api_version: str, kind: str) -> ResourceType:
        try:
            return BY_KIND[(api_version, kind)]
        except KeyError:
            raise ValueError(f"the emulator does not serve {api_version} {kind}") from None

    # --- request handling ------------------------------------------------------------------------------------

    def _log(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def _take_faults(self, method: str, path: str) -> tuple[Fault | None, Fault | None]:
        delay = error = None
        with self._lock:
            for fault in list(self._faults):
                is_delay = fault.status is None
                if (delay if is_delay else error) is not None or not fault.matches(method, path):
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                if is_delay:
                    delay = fault
                else:
                    error = fault
        return delay, error

    def _serve(self, request: Request, handler: Handler) -> int:
        """Answer one request; every failure becomes a Status response, never a dead handler thread."""
        delay, fault = self._take_faults(request.method, request.path)
        if delay:
            self._stopping.wait(delay.delay)
        if fault:
            reason = _REASONS.get(fault.status, "InternalError")
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
            return handler.send_status(ApiError(fault.status, reason, fault.message), headers)
        try:
            return self._dispatch(request, handler)
        except ApiError as error:
            return handler.send_status(error)
        except (PatchError, SelectorError) as error:
            code, reason = (422, "Invalid") if isinstance(error, PatchError) else (400, "BadRequest")
            return handler.send_status(ApiError(code, reason, str(error)))
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            # A body of the wrong shape (e.g. `labels: 3`) must give a 400, not a crashed thread; the traceback
            # stays available at debug level in case it was the emulator's fault after all.
            logger.debug("emulator: malformed %s %s", request.method, request.path, exc_info=True)
            return handler.send_status(bad_request(f"malformed request: {error}"))
        except OSError:
            handler.close_connection = True
            return 499
        except Exception:
            logger.exception("emulator: unexpected error on %s %s", request.method, request.path)
            return handler.send_status(ApiError(500, "InternalError", "internal error in the emulator"))

    def _dispatch(self, request: Request, handler: Handler) -> int:
        path, method = request.path, request.method
        if method not in ("GET", "HEAD") and not (path.startswith("/api/") or path.startswith("/apis/")):
            raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on {path}")
        if document := static_document(path, self.url.removeprefix("http://")):
            return handler.send_json(200, document)
        rtype, namespace, name, subresource = route(path)
        if method in ("GET", "HEAD"):
            if name:
                obj = self.store.get(rtype, namespace, name)
                return handler.send_json(200, table_of(request, [obj]) or obj)
            if request.flag("watch"):
                return self._watch(request, handler, rtype, namespace)
            return handler.send_json(200, self._list(request, rtype, namespace))
        dry_run = request.param("dryRun") == "All"
        if method == "POST" and not name and (namespace or not rtype.namespaced):
            created = self.store.create(rtype, namespace, request.json_body(), request.manager(), dry_run=dry_run)
            return handler.send_json(201, created)
        if not name:
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on a collection here")
        if method == "PUT":
            body = request.json_body(yaml_allowed=True)
            replaced = self.store.replace(
                rtype, namespace, name, body, request.manager(), subresource=subresource, dry_run=dry_run
            )
            return handler.send_json(200, replaced)
        if method == "PATCH":
            return self._patch(request, handler, rtype, namespace, name, subresource, dry_run)
        if method == "DELETE" and not subresource:
            return handler.send_json(200, self.store.delete(rtype, namespace, name, dry_run=dry_run))
        raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on {path}")

    @staticmethod
    def _matcher(request: Request, namespace: str):
        labels, fields = label_matcher(request.param("labelSelector")), field_matcher(request.param("fieldSelector"))

        def matches(obj: dict) -> bool:
            in_namespace = not namespace or obj["metadata"].get("namespace") == namespace
            return in_namespace and labels(obj) and fields(obj)

        return matches

    def _list(self, request: Request, rtype: ResourceType, namespace: str) -> dict:
        items, resource_version = self.store.list(rtype, namespace, self._matcher(request, namespace))
        if answer := table_of(request, items):
            answer["metadata"] = {"resourceVersion": str(resource_version)}
            return answer
        for item in items:  # like the API server: list items carry no apiVersion/kind of their own
            item.pop("apiVersion", None)
            item.pop("kind", None)
        return {
            "kind": f"{rtype.kind}List",
            "apiVersion": rtype.group_version,
            "metadata": {"resourceVersion": str(resource_version)},
            "items": items,
        }

    def _patch(self, request, handler, rtype, namespace, name, subresource, dry_run) -> int:
        content_type = request.content_type
        if content_type in ("application/apply-patch+yaml", "application/apply-patch+json"):
            manager = request.param("fieldManager")
            if not manager:
                message = 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply'
                raise ApiError(422, "Invalid", message)
            config = request.json_body(yaml_allowed=True)
            options = {"force": request.flag("force"), "subresource": subresource, "dry_run": dry_run}
            obj, created = self.store.apply(rtype, namespace, name, config, manager, **options)
            return handler.send_json(201 if created else 200, obj)
        body = request.json_body()
        if content_type == "application/json-patch+json":
            patcher = lambda obj: json_patch(obj, body)  # noqa: E731
        elif content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            if not isinstance(body, dict):
                raise bad_request("a merge patch must be a JSON object")
            patch = strip_strategic_directives(body) if "strategic" in content_type else body
            patcher = lambda obj: merge_patch(obj, patch)  # noqa: E731
        else:
            raise ApiError(415, "UnsupportedMediaType", f"the content type {content_type!r} is not supported")
        patched = self.store.patch(
            rtype, namespace, name, patcher, request.manager(), subresource=subresource, dry_run=dry_run
        )
        return handler.send_json(200, patched)

    def _watch(self, request: Request, handler: Handler, rtype: ResourceType, namespace: str) -> int:
        """Stream watch events as JSON lines until `timeoutSeconds`, the client leaves or the emulator stops.

        Without a resourceVersion (or with "0") the stream starts with a synthetic ADDED per existing object, like
        the API server; `sendInitialEvents=true` adds the closing BOOKMARK. A selector watch reports an object
        that stops matching as DELETED and one that starts matching as ADDED.
        """
        matches = self._matcher(request, namespace)
        requested = float(request.param("timeoutSeconds") or 0)  # 0 or absent: the server's default, like kube
        timeout = min(requested, MAX_WATCH_SECONDS) if requested > 0 else MAX_WATCH_SECONDS
        deadline = time.monotonic() + timeout
        start = request.param("resourceVersion")
        if start not in ("", "0") and not start.isdigit():
            raise bad_request(f"invalid resourceVersion {start!r}")
        with self._streams_changed:
            self._streams += 1
        try:
            self._stream_events(request, handler, rtype, namespace, matches, deadline, start)
        finally:
            with self._streams_changed:
                self._streams -= 1
                self._streams_changed.notify_all()
        return 200

    def _stream_events(self, request, handler, rtype, namespace, matches, deadline: float, start: str) -> None:
        handler.start_stream()
        if start in ("", "0") or request.flag("sendInitialEvents"):
            items, since = self.store.list(rtype, namespace, matches)
            for obj in items:
                handler.send_chunk({"type": "ADDED", "object": obj})
            if request.flag("sendInitialEvents"):
                marker = {"resourceVersion": str(since), "annotations": {"k8s.io/initial-events-end": "true"}}
                bookmark = {"kind": rtype.kind, "apiVersion": rtype.group_version, "metadata": marker}
                handler.send_chunk({"type": "BOOKMARK", "object": bookmark})
        else:
            since = int(start)
        while True:
            try:
                events, since = self.store.events_after(rtype.key, since)
            except ApiError as gone:
                handler.send_chunk({"type": "ERROR", "object": gone.status()})
                break
            for event in events:
                if event_type := self._visible_as(event, matches):
                    handler.send_chunk({"type": event_type, "object": event.object})
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stopping.is_set():
                break
            self.store.wait_for_change(since, min(remaining, 5.0))
        handler.end_stream()

    @staticmethod
    def _visible_as(event, matches) -> str | None:
        now_matches = matches(event.object)
        if event.type != "MODIFIED":
            return event.type if now_matches else None
        was_matching = event.previous is not None and matches(event.previous)
        if now_matches:
            return "MODIFIED" if was_matching else "ADDED"
        return "DELETED" if was_matching else None


def kubeconfig_for(url: str, namespace: str = "default") -> str:
    """A kubeconfig (YAML text) for the emulator serving at ``url``; it needs no credentials."""
    context = {"cluster": "kubesim", "user": "kubesim", "namespace": namespace}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kubesim", "cluster": {"server": url}}],
        "users": [{"name": "kubesim", "user": {}}],
        "contexts": [{"name": "kubesim", "context": context}],
        "current-context": "kubesim",
    }
    return yaml.safe_dump(config)
