"""The cluster adapter used by the workers: one class per cluster connection, owning its configuration, its HTTP
session (the official client's connection pool) and its timeouts.

It speaks to the API paths of the kinds the portal manages (``kinds.KINDS``) through the official client's
``ApiClient``, so no discovery request precedes the work. Every request carries ``(connect, read)`` timeouts.
Errors come out as two classes only (see ``errors``), so the job runner knows what to retry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.watch.watch import iter_resp_lines

from instances.kube.errors import (
    TRANSPORT_ERRORS,
    ClusterError,
    PermanentClusterError,
    TransientClusterError,
    WatchExpired,
    classify,
    scrub,
    secret_values,
)
from instances.kube.kinds import (
    BY_NAME,
    FIELD_MANAGER,
    KINDS,
    MANAGED_BY_LABEL,
    PRUNABLE_KINDS,
    Kind,
    object_key,
    selector,
    sort_key,
)
from instances.kube.objects import AppliedObject, ApplyResult, job_from_cronjob

__all__ = ["AppliedObject", "ApplyResult", "ClusterClient", "ClusterError", "PermanentClusterError"]
__all__ += ["TransientClusterError"]

logger = logging.getLogger(__name__)
DEFAULT_TIMEOUT = (5.0, 30.0)
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"


def _describe(kind: str, namespace: str | None, name: str) -> str:
    """``Deployment smile-unistra/smile``, or ``Namespace smile-unistra`` for cluster-scoped kinds."""
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


class ClusterClient:
    """One Kubernetes cluster as the portal uses it (see the module docstring)."""

    def __init__(self, configuration: k8s.Configuration, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT):
        # Retry only connection set-up (the request never reached the server); a read error on a PATCH may
        # or may not have been applied, so it goes back to the job runner as a transient error instead.
        # Retry-After is not honoured here either: a 429 goes back to the job runner, which reschedules itself.
        configuration.retries = urllib3.Retry(
            total=2, connect=2, read=0, status=0, other=0, redirect=0, respect_retry_after_header=False
        )
        self.timeout = timeout
        self.host = configuration.host
        self._api = k8s.ApiClient(configuration)

    # --- construction ----------------------------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(cls, text: str, context: str | None = None, **kwargs) -> ClusterClient:
        """From the text of a kubeconfig file (as stored on the Cluster record)."""
        try:
            config_dict = yaml.safe_load(text)
        except yaml.YAMLError:
            raise PermanentClusterError("the kubeconfig is not valid YAML") from None
        if not isinstance(config_dict, dict):
            raise PermanentClusterError("the kubeconfig is not a YAML mapping")
        configuration = k8s.Configuration()
        try:
            k8s_config.load_kube_config_from_dict(
                config_dict, context=context, client_configuration=configuration, persist_config=False
            )
        except (ConfigException, KeyError, TypeError, ValueError) as error:
            raise PermanentClusterError(scrub(f"the kubeconfig cannot be used: {error}", [])) from None
        return cls(configuration, **kwargs)

    @classmethod
    def in_cluster(cls, **kwargs) -> ClusterClient:
        """From the service account of the pod the portal runs in."""
        configuration = k8s.Configuration()
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except ConfigException as error:
            raise PermanentClusterError(f"not running inside a cluster: {error}") from None
        return cls(configuration, **kwargs)

    @classmethod
    def for_url(cls, url: str, *, token: str | None = None, verify_ssl: bool = True, **kwargs) -> ClusterClient:
        """From a bare API URL, optionally with a bearer token."""
        configuration = k8s.Configuration()
        configuration.host = url.rstrip("/")
        configuration.verify_ssl = verify_ssl
        if token:
            configuration.api_key = {"BearerToken": token}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return cls(configuration, **kwargs)

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> ClusterClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- plumbing --------------------------------------------------------------------------------------------

    @staticmethod
    def _kind(kind: str, api_version: str | None = None) -> Kind:
        found = KINDS.get((api_version, kind)) if api_version else BY_NAME.get(kind)
        if found is None:
            raise PermanentClusterError(f"the cluster does not serve {api_version or '?'} {kind} to the portal")
        return found

    def _exchange(self, method: str, path: str, *, query=(), body=None, content_type=None, timeout=None):
        """One HTTP request; returns the official client's response, unread. Non-2xx raises ``ApiException``."""
        headers = {"Accept": "application/json"}
        if content_type or body is not None:
            headers["Content-Type"] = content_type or "application/json"
        # kubernetes 36's ApiClient (the 37 one clashes with botocore's python-dateutil): the answer stays unread,
        # and a non-2xx answer raises ApiException in its REST layer.
        return self._api.call_api(
            path, method, query_params=[q for q in query if q[1] is not None], header_params=headers, body=body,
            auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True,
            _request_timeout=timeout or self.timeout,
        )  # fmt: skip

    def _send(self, method: str, path: str, **kwargs) -> dict:
        """One HTTP request; returns the answer's JSON."""
        data = self._exchange(method, path, **kwargs).read()
        return json.loads(data) if data else {}

    def _call(self, action: str, method: str, path: str, *, secrets: list[str] | None = None, **kwargs):
        try:
            return self._send(method, path, **kwargs)
        except TRANSPORT_ERRORS as error:
            raise classify(error, action, secrets) from None

    def _maybe(self, action: str, method: str, path: str, *, absent: tuple[int, ...] = (404,), **kwargs):
        """Like ``_call``, but None when the answer is one of ``absent`` (e.g. a 404 on a read)."""
        try:
            return self._send(method, path, **kwargs)
        except ApiException as error:
            if error.status in absent:
                return None
            raise classify(error, action) from None
        except TRANSPORT_ERRORS as error:
            raise classify(error, action) from None

    # --- queries ---------------------------------------------------------------------------------------------

    def server_version(self) -> str:
        """The API server's gitVersion, e.g. ``v1.32.0``."""
        return self._call("get the server version", "GET", "/version").get("gitVersion", "")

    def reachable(self) -> tuple[bool, str]:
        """(True, "Kubernetes v1.32.0") or (False, why not) — for the cluster check in the UI."""
        try:
            return True, f"Kubernetes {self.server_version()}"
        except ClusterError as error:
            return False, error.message

    def get(self, kind: str, namespace: str | None, name: str, *, api_version: str | None = None) -> dict | None:
        """One object as a dict, or None when it does not exist."""
        spec = self._kind(kind, api_version)
        return self._maybe(f"get {_describe(kind, namespace, name)}", "GET", spec.path(namespace, name))

    def list(
        self,
        kind: str,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        api_version: str | None = None,
    ) -> tuple[list[dict], str]:
        """Objects of a kind in one namespace (or all: ``None``), and the list's resourceVersion to watch from.

        Items get their ``apiVersion`` and ``kind`` filled in: the API server leaves them out of list items.
        """
        spec = self._kind(kind, api_version)
        where = f" in {namespace}" if namespace else ""
        query = [("labelSelector", label_selector), ("fieldSelector", field_selector)]
        listing = self._call(f"list {kind}{where}", "GET", spec.path(namespace), query=query)
        typed = {"apiVersion": spec.api_version, "kind": spec.kind}
        items = [{**typed, **item} for item in listing.get("items") or []]
        return items, (listing.get("metadata") or {}).get("resourceVersion") or ""

    def list_managed(self, kind: str, label_selector: str, *, api_version: str | None = None) -> list[dict]:
        """Every object of a kind matching the selector, in all namespaces, with one list request."""
        return self.list(kind, None, label_selector=label_selector, api_version=api_version)[0]

    def watch(
        self,
        kind: str,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int = 30,
        api_version: str | None = None,
    ) -> Iterator[dict]:
        """Events (``{"type": "ADDED|MODIFIED|DELETED", "object": {...}}``) as they come, until the server ends
        the watch after ``timeout_seconds`` or the caller closes the iterator. A watch from a version the server
        has forgotten (410 Gone) raises ``WatchExpired``: the caller lists again and watches from there."""
        spec = self._kind(kind, api_version)
        action = f"watch {kind}" + (f" in {namespace}" if namespace else "")
        query = [
            ("watch", "true"),
            ("labelSelector", label_selector),
            ("fieldSelector", field_selector),
            ("resourceVersion", resource_version or None),
            ("timeoutSeconds", timeout_seconds),
        ]
        # The read timeout must outlast the server-side watch timeout, or a quiet watch would fail as a timeout.
        timeout = (self.timeout[0], timeout_seconds + self.timeout[1])
        try:
            response = self._exchange("GET", spec.path(namespace), query=query, timeout=timeout)
        except ApiException as error:
            if error.status == 410:
                raise WatchExpired(action) from None
            raise classify(error, action) from None
        except TRANSPORT_ERRORS as error:
            raise classify(error, action) from None
        try:
            for line in iter_resp_lines(response):
                if not line.strip():
                    continue  # a keep-alive blank line, as the official Watch skips too
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    if (event.get("object") or {}).get("code") == 410:
                        raise WatchExpired(action)
                    raise classify(ApiException(status=(event.get("object") or {}).get("code"), reason="watch"), action)
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    yield {"type": event["type"], "object": {"apiVersion": spec.api_version, **event["object"]}}
        except (ValueError, *TRANSPORT_ERRORS) as error:
            raise classify(error, action) from None
        finally:
            response.release_conn()
            response.close()

    def namespace_gone(self, name: str) -> bool:
        return self.get("Namespace", None, name) is None

    # --- changes ---------------------------------------------------------------------------------------------

    def apply(
        self,
        manifests: list[dict],
        field_manager: str = FIELD_MANAGER,
        force: bool = True,
        *,
        known_versions: dict[str, str] | None = None,
    ) -> ApplyResult:
        """Server-side apply each manifest, in dependency order: one PATCH per object, no read before it.

        The answer tells what happened: 201 is a creation; the same ``resourceVersion`` as in ``known_versions``
        (the versions after the last apply) means the API server wrote nothing; otherwise the object was
        "applied" — changed by this apply, or by someone else (a controller's status) since the last one.
        """
        known_versions = known_versions or {}
        result = ApplyResult()
        for manifest in sorted(manifests, key=sort_key):
            api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
            meta = manifest.get("metadata") or {}
            name, namespace = meta.get("name"), meta.get("namespace")
            if not (api_version and kind and name):
                raise PermanentClusterError("a manifest lacks apiVersion, kind or metadata.name")
            spec = self._kind(kind, api_version)
            if spec.namespaced and not namespace:
                raise PermanentClusterError(f"{kind} {name} has no namespace")
            namespace = namespace if spec.namespaced else None
            query = [("fieldManager", field_manager), ("force", "true" if force else None)]
            try:
                response = self._exchange(
                    "PATCH", spec.path(namespace, name), query=query, body=manifest, content_type=APPLY_CONTENT_TYPE
                )
                answer = json.loads(response.read() or "{}")
            except (ValueError, *TRANSPORT_ERRORS) as error:  # ValueError: an answer that is not JSON
                raise classify(error, f"apply {_describe(kind, namespace, name)}", secret_values(manifest)) from None
            version = (answer.get("metadata") or {}).get("resourceVersion", "")
            key = object_key(manifest)
            if response.status == 201:
                action = "created"
            elif known_versions.get(key) == version:
                action = "unchanged"
            else:
                action = "applied"
            result.objects.append(AppliedObject(api_version, kind, namespace or "", name, action, version, key))
            logger.debug("apply %s %s/%s: %s", kind, namespace or "", name, action)
        return result

    def create(self, manifest: dict, field_manager: str = FIELD_MANAGER) -> dict | None:
        """Create an object; None when it already exists (it is never updated)."""
        kind, meta = manifest.get("kind"), manifest.get("metadata") or {}
        spec = self._kind(kind, manifest.get("apiVersion"))
        namespace = meta.get("namespace") if spec.namespaced else None
        action = f"create {_describe(kind, namespace, meta.get('name', ''))}"
        query = [("fieldManager", field_manager)]
        try:
            return self._send("POST", spec.path(namespace), query=query, body=manifest)
        except ApiException as error:
            if error.status == 409 and "AlreadyExists" in (error.body or ""):
                return None
            raise classify(error, action, secret_values(manifest)) from None
        except TRANSPORT_ERRORS as error:
            raise classify(error, action, secret_values(manifest)) from None

    def create_if_absent(self, manifest: dict, field_manager: str = FIELD_MANAGER) -> bool:
        """Create an object unless it exists; True when created. Never updates: for generated Secrets, which
        must keep their first value (a re-apply would rotate the database password)."""
        return self.create(manifest, field_manager) is not None

    def prune(
        self, namespace: str, labels: Mapping[str, str], keep: set[tuple[str, str, str]]
    ) -> list[tuple[str, str, str]]:
        """Delete the managed objects of ``namespace`` that are no longer rendered; returns what was deleted.

        Only objects of a prunable kind carrying all of ``labels`` (which must include the managed-by label) are
        considered; ``keep`` holds (apiVersion, kind, name) of what was just applied. One list request per kind.
        """
        if MANAGED_BY_LABEL not in labels:
            raise ValueError(f"refusing to prune without the {MANAGED_BY_LABEL} label")
        label_selector = selector(labels)
        deleted = []
        for spec in PRUNABLE_KINDS:
            items, _version = self.list(spec.kind, namespace, label_selector=label_selector)
            for item in items:
                meta = item["metadata"]
                ref = (spec.api_version, spec.kind, meta["name"])
                item_labels = meta.get("labels") or {}
                # Checked again here: a server that ignored the selector must not make us delete others' objects.
                if ref in keep or any(item_labels.get(k) != v for k, v in labels.items()):
                    continue
                self.delete(spec.kind, namespace, meta["name"])
                deleted.append(ref)
                logger.info("pruned %s %s/%s", spec.kind, namespace, meta["name"])
        return deleted

    def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        """Delete one object (its dependents in the background); False when it was already gone."""
        spec = self._kind(kind)
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        action = f"delete {_describe(kind, namespace, name)}"
        return self._maybe(action, "DELETE", spec.path(namespace, name), body=body) is not None

    def delete_namespace(self, name: str) -> bool:
        """Start deleting a namespace and everything in it; False when it was already gone.

        Deletion is asynchronous in Kubernetes (the namespace is ``Terminating`` for a while): callers wait for
        it with a bounded watch rather than here.
        """
        return self.delete("Namespace", None, name)

    def create_job_from_cronjob(
        self,
        namespace: str,
        cronjob_name: str,
        job_name: str,
        labels: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> dict:
        """Start a Job from a CronJob's template now, as ``kubectl create job --from=cronjob/<name>`` does, with
        ``env`` set in its containers (what a restore Job restores, and where).

        The Job is owned by the CronJob, so the CronJob's history limits clean it up like a scheduled run.
        Idempotent: if the Job already exists (a retry after a timeout), the existing one is returned.
        """
        cronjob = self.get("CronJob", namespace, cronjob_name)
        if cronjob is None:
            raise PermanentClusterError(f"create job from CronJob {namespace}/{cronjob_name}: CronJob not found")
        job = job_from_cronjob(cronjob, job_name, labels, env)
        created = self.create(job)
        if created is not None:
            return {"apiVersion": "batch/v1", "kind": "Job", **created}
        existing = self.get("Job", namespace, job_name)
        if existing is None:
            raise TransientClusterError(f"create Job {namespace}/{job_name}: it exists, then it does not")
        return existing

    def scale(self, kind: str, namespace: str, name: str, replicas: int, field_manager: str) -> dict | None:
        """Merge-patch ``spec.replicas`` of a workload (None when it does not exist). The next server-side apply
        of the portal (with force) takes the field back, and with it the replicas its manifest gives."""
        spec = self._kind(kind)
        return self._maybe(
            f"scale {_describe(kind, namespace, name)} to {replicas}", "PATCH", spec.path(namespace, name),
            query=[("fieldManager", field_manager)], body={"spec": {"replicas": replicas}},
            content_type="application/merge-patch+json",
        )  # fmt: skip

    def patch_status(
        self, kind: str, namespace: str | None, name: str, status: dict, *, api_version: str | None = None
    ) -> dict:
        """Merge-patch an object's ``/status`` — what a controller does; used by tests and the sandbox."""
        spec = self._kind(kind, api_version)
        return self._call(
            f"patch status of {_describe(kind, namespace, name)}",
            "PATCH",
            spec.path(namespace, name) + "/status",
            body={"status": status},
            content_type="application/merge-patch+json",
        )
