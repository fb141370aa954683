"""The cluster adapter used by the workers: one class per cluster connection, owning its configuration, its HTTP
session (the official client's connection pool) and its timeouts.

Every request carries `_request_timeout=(connect, read)`. Errors come out as two classes only, so that the job
runner knows what to retry: `TransientClusterError` (409 conflicts, 429, 5xx, timeouts, connection failures) and
`PermanentClusterError` (everything else: invalid objects, forbidden, unknown kinds, bad kubeconfig). Their
messages name the call, the object, the HTTP status and the API server's reason, and never carry request
bodies, Secret values or credentials; the original exception is not chained for the same reason.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient, LazyDiscoverer
from kubernetes.dynamic.exceptions import ResourceNotFoundError, ResourceNotUniqueError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (5.0, 30.0)
DEFAULT_FIELD_MANAGER = "saas-portal"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"

# The kinds the portal renders, with the API version it renders them in.
KIND_API_VERSIONS = {
    "Namespace": "v1",
    "ResourceQuota": "v1",
    "LimitRange": "v1",
    "ServiceAccount": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "PersistentVolumeClaim": "v1",
    "Service": "v1",
    "Pod": "v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "Ingress": "networking.k8s.io/v1",
    "Role": "rbac.authorization.k8s.io/v1",
    "RoleBinding": "rbac.authorization.k8s.io/v1",
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "PodDisruptionBudget": "policy/v1",
}

# Apply order: the namespace, then what constrains it, then what workloads mount or reach, then workloads, then
# the Ingress that routes to their Services. Unknown kinds go with the workloads.
_APPLY_RANK = {
    "Namespace": 0,
    **dict.fromkeys(("ResourceQuota", "LimitRange", "NetworkPolicy", "ServiceAccount", "Role", "RoleBinding"), 1),
    **dict.fromkeys(("ConfigMap", "Secret", "PersistentVolumeClaim", "Service"), 2),
    "Ingress": 4,
}
_WORKLOAD_RANK = 3

# What `prune` may delete when it is no longer rendered. Deliberately absent: Namespace (deleted with the
# instance), PersistentVolumeClaim and Secret (data and generated credentials: they go only with the namespace),
# Job (backup runs are history, not rendered state).
PRUNABLE_KINDS = (
    "Ingress",
    "CronJob",
    "StatefulSet",
    "Deployment",
    "PodDisruptionBudget",
    "Service",
    "ConfigMap",
    "RoleBinding",
    "Role",
    "ServiceAccount",
    "NetworkPolicy",
    "LimitRange",
    "ResourceQuota",
)

_BEARER = re.compile(r"(?i)bearer\s+\S+")


class ClusterError(Exception):
    """A cluster call failed; `status` is the HTTP status when the API server answered."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = ""):
        super().__init__(message)
        self.message, self.status, self.reason = message, status, reason


class TransientClusterError(ClusterError):
    """Worth retrying later: conflict, throttling, server error, timeout, unreachable cluster."""


class PermanentClusterError(ClusterError):
    """Retrying will not help: the request or the configuration is wrong."""


@dataclass(frozen=True)
class AppliedObject:
    """One object of an apply and what happened to it: created, configured or unchanged."""

    api_version: str
    kind: str
    namespace: str
    name: str
    action: str
    resource_version: str

    @property
    def ref(self) -> tuple[str, str, str]:
        return (self.api_version, self.kind, self.name)


@dataclass
class ApplyResult:
    """The outcome of `ClusterClient.apply`, in apply order."""

    objects: list[AppliedObject] = field(default_factory=list)

    def with_action(self, action: str) -> list[AppliedObject]:
        return [o for o in self.objects if o.action == action]

    @property
    def changed(self) -> bool:
        return any(o.action != "unchanged" for o in self.objects)

    @property
    def refs(self) -> set[tuple[str, str, str]]:
        """(apiVersion, kind, name) of every applied object: the `keep` set for `prune`."""
        return {o.ref for o in self.objects}

    def summary(self) -> str:
        counts = {a: len(self.with_action(a)) for a in ("created", "configured", "unchanged")}
        return ", ".join(f"{n} {a}" for a, n in counts.items() if n) or "nothing applied"


def _describe(kind: str, namespace: str | None, name: str) -> str:
    """`Deployment smile-unistra/smile`, or `Namespace smile-unistra` for cluster-scoped kinds."""
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _secret_values(manifest: dict) -> list[str]:
    """The values of a Secret manifest (and their decoded forms), to be blanked out of any message."""
    if manifest.get("kind") != "Secret":
        return []
    values = [str(v) for v in (manifest.get("stringData") or {}).values()]
    for encoded in (manifest.get("data") or {}).values():
        values.append(str(encoded))
        with contextlib.suppress(binascii.Error, UnicodeDecodeError):
            values.append(base64.b64decode(str(encoded), validate=True).decode())
    return [v for v in values if len(v) >= 3]


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    text = _BEARER.sub("Bearer [redacted]", text)
    return text if len(text) <= 500 else text[:500] + "…"


def classify(error: Exception, action: str, secrets: list[str] | None = None) -> ClusterError:
    """Turn a client/transport exception into a Transient- or PermanentClusterError with a safe message."""
    secrets = secrets or []
    if isinstance(error, ApiException):
        status = error.status or 0
        reason, message = error.reason or "", ""
        try:
            body = json.loads(error.body or "{}")
            reason, message = body.get("reason") or reason, body.get("message") or ""
        except (TypeError, ValueError, AttributeError):
            pass
        text = _scrub(f"{action}: HTTP {status} {reason}" + (f": {message}" if message else ""), secrets)
        transient = status in (408, 409, 429) or status >= 500
        return (TransientClusterError if transient else PermanentClusterError)(text, status=status, reason=reason)
    cause = getattr(error, "reason", None) if isinstance(error, urllib3.exceptions.MaxRetryError) else error
    detail = f"{type(cause).__name__}: {cause}" if cause is not None else type(error).__name__
    text = _scrub(f"{action}: cannot talk to the cluster ({detail})", secrets)
    if isinstance(cause, urllib3.exceptions.SSLError):
        return PermanentClusterError(text)  # a certificate problem does not fix itself
    return TransientClusterError(text)


_TRANSPORT_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError)


class _MemoryDiscoverer(LazyDiscoverer):
    """Discovery cached in memory for the life of the client.

    The stock discoverer also writes a JSON cache per API host into the shared temp directory: litter for
    emulators on random ports, and a file another local user could plant. We give it a cache path that cannot
    exist (under /dev/null) and never write.
    """

    def __init__(self, client, cache_file=None):
        super().__init__(client, "/dev/null/kube-discovery.json")

    def _write_cache(self):
        pass


class _TimedDynamicClient(DynamicClient):
    """A DynamicClient whose every request, discovery included, carries the adapter's timeout."""

    def __init__(self, api_client, timeout):
        self._timeout = timeout
        super().__init__(api_client, discoverer=_MemoryDiscoverer)

    def request(self, method, path, body=None, **params):
        params.setdefault("_request_timeout", self._timeout)
        return super().request(method, path, body=body, **params)


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
        self._dynamic_client: DynamicClient | None = None

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
            raise PermanentClusterError(_scrub(f"the kubeconfig cannot be used: {error}", [])) from None
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
        """From a bare API URL: the emulator in tests and in the sandbox, or a cluster reached with a token."""
        configuration = k8s.Configuration()
        configuration.host = url.rstrip("/")
        configuration.verify_ssl = verify_ssl
        if token:
            configuration.api_key = {"authorization": token}
            configuration.api_key_prefix = {"authorization": "Bearer"}
        return cls(configuration, **kwargs)

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> ClusterClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- plumbing --------------------------------------------------------------------------------------------

    def _call(self, action: str, function, *, secrets: list[str] | None = None):
        try:
            return function()
        except _TRANSPORT_ERRORS as error:
            raise classify(error, action, secrets) from None

    @property
    def _dynamic(self) -> DynamicClient:
        if self._dynamic_client is None:
            self._dynamic_client = self._call("discover the API", lambda: _TimedDynamicClient(self._api, self.timeout))
        return self._dynamic_client

    def _resource(self, kind: str, api_version: str | None = None):
        api_version = api_version or KIND_API_VERSIONS.get(kind)
        if not api_version:
            raise PermanentClusterError(f"unknown kind {kind!r}: give its apiVersion")
        try:
            return self._call(
                f"discover {api_version} {kind}",
                lambda: self._dynamic.resources.get(api_version=api_version, kind=kind),
            )
        except (ResourceNotFoundError, ResourceNotUniqueError):
            raise PermanentClusterError(f"the cluster does not serve {api_version} {kind}") from None

    def _read(self, resource, namespace: str | None, name: str) -> dict | None:
        action = f"get {_describe(resource.kind, namespace, name)}"
        try:
            return self._dynamic.get(resource, name=name, namespace=namespace).to_dict()
        except ApiException as error:
            if error.status == 404:
                return None
            raise classify(error, action) from None
        except _TRANSPORT_ERRORS as error:
            raise classify(error, action) from None

    # --- queries ---------------------------------------------------------------------------------------------

    def server_version(self) -> str:
        """The API server's gitVersion, e.g. `v1.32.0`."""
        version = self._call(
            "get the server version", lambda: k8s.VersionApi(self._api).get_code(_request_timeout=self.timeout)
        )
        return version.git_version

    def reachable(self) -> tuple[bool, str]:
        """(True, "Kubernetes v1.32.0") or (False, why not) — for the cluster check in the UI."""
        try:
            return True, f"Kubernetes {self.server_version()}"
        except ClusterError as error:
            return False, error.message

    def get(self, kind: str, namespace: str | None, name: str, *, api_version: str | None = None) -> dict | None:
        """One object as a dict, or None when it does not exist."""
        return self._read(self._resource(kind, api_version), namespace, name)

    def list(
        self,
        kind: str,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        api_version: str | None = None,
    ) -> tuple[list[dict], str]:
        """Objects of a kind in one namespace (or all: `None`), and the list's resourceVersion to watch from.

        Items get their `apiVersion` and `kind` filled in: the API server leaves them out of list items.
        """
        resource = self._resource(kind, api_version)
        where = f" in {namespace}" if namespace else ""
        listing = self._call(
            f"list {kind}{where}",
            lambda: self._dynamic.get(
                resource, namespace=namespace, label_selector=label_selector, field_selector=field_selector
            ),
        ).to_dict()
        typed = {"apiVersion": resource.group_version, "kind": resource.kind}
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
        """Events (`{"type": "ADDED|MODIFIED|DELETED", "object": {...}}`) until the server ends the watch after
        `timeout_seconds`. A watch from a version the server has forgotten (410 Gone) just ends: callers list
        again, which they do before every watch anyway."""
        resource = self._resource(kind, api_version)
        # The read timeout must outlast the server-side watch timeout, or a quiet watch would fail as a timeout.
        request_timeout = (self.timeout[0], timeout_seconds + self.timeout[1])
        events = watch.Watch().stream(
            resource.get,
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            serialize=False,
            _request_timeout=request_timeout,
        )
        action = f"watch {kind}" + (f" in {namespace}" if namespace else "")
        try:
            for event in events:
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    yield {"type": event["type"], "object": event["object"]}
        except ApiException as error:
            if error.status != 410:
                raise classify(error, action) from None
        except _TRANSPORT_ERRORS as error:
            raise classify(error, action) from None
        finally:
            events.close()

    def namespace_gone(self, name: str) -> bool:
        return self.get("Namespace", None, name) is None

    # --- changes ---------------------------------------------------------------------------------------------

    def apply(
        self, manifests: list[dict], field_manager: str = DEFAULT_FIELD_MANAGER, force: bool = True
    ) -> ApplyResult:
        """Server-side apply each manifest, in dependency order; report created / configured / unchanged.

        The outcome compares the object's resourceVersion before and after the apply: the API server does not
        write (and keeps the version) when an apply changes nothing, so a re-apply reports "unchanged".
        """
        result = ApplyResult()
        ordered = sorted(manifests, key=lambda m: _APPLY_RANK.get(m.get("kind"), _WORKLOAD_RANK))
        for manifest in ordered:
            api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
            meta = manifest.get("metadata") or {}
            name, namespace = meta.get("name"), meta.get("namespace")
            if not (api_version and kind and name):
                raise PermanentClusterError("a manifest lacks apiVersion, kind or metadata.name")
            resource = self._resource(kind, api_version)
            if resource.namespaced and not namespace:
                raise PermanentClusterError(f"{kind} {name} has no namespace")
            namespace = namespace if resource.namespaced else None
            before = self._read(resource, namespace, name)
            applied = self._call(
                f"apply {_describe(kind, namespace, name)}",
                lambda r=resource, m=manifest, ns=namespace, n=name: self._dynamic.server_side_apply(
                    r, body=m, name=n, namespace=ns, field_manager=field_manager, force_conflicts=force
                ),
                secrets=_secret_values(manifest),
            )
            version = applied.metadata.resourceVersion
            if before is None:
                action = "created"
            else:
                action = "unchanged" if before["metadata"]["resourceVersion"] == version else "configured"
            result.objects.append(AppliedObject(api_version, kind, namespace or "", name, action, version))
            logger.info("apply %s %s/%s: %s", kind, namespace or "", name, action)
        return result

    def create_if_absent(self, manifest: dict, field_manager: str = DEFAULT_FIELD_MANAGER) -> bool:
        """Create an object unless it exists; True when created. Never updates: for generated Secrets, which
        must keep their first value (a re-apply would rotate the database password)."""
        kind, meta = manifest.get("kind"), manifest.get("metadata") or {}
        resource = self._resource(kind, manifest.get("apiVersion"))
        namespace = meta.get("namespace") if resource.namespaced else None
        action = f"create {_describe(kind, namespace, meta.get('name', ''))}"
        try:
            self._dynamic.create(resource, body=manifest, namespace=namespace, field_manager=field_manager)
        except ApiException as error:
            if error.status == 409 and "AlreadyExists" in (error.body or ""):
                return False
            raise classify(error, action, _secret_values(manifest)) from None
        except _TRANSPORT_ERRORS as error:
            raise classify(error, action, _secret_values(manifest)) from None
        return True

    def prune(
        self,
        namespace: str,
        label_selector: str,
        keep: set[tuple[str, str, str]],
        *,
        kinds: tuple[str, ...] = PRUNABLE_KINDS,
    ) -> list[tuple[str, str, str]]:
        """Delete the managed objects of `namespace` that are no longer rendered; returns what was deleted.

        Only objects matching `label_selector` (which must name the managed-by label) and only `kinds` are
        considered; `keep` holds the (apiVersion, kind, name) of everything just applied.
        """
        required = dict(re.findall(r"([\w./-]+)\s*==?\s*([\w.-]+)", label_selector))
        if MANAGED_BY_LABEL not in required:
            raise ValueError(f"refusing to prune without a {MANAGED_BY_LABEL}=... selector")
        deleted = []
        for kind in kinds:
            resource = self._resource(kind)
            listing = self._call(
                f"list {kind} in {namespace}",
                lambda r=resource: self._dynamic.get(r, namespace=namespace, label_selector=label_selector),
            )
            for item in listing.to_dict().get("items") or []:
                meta = item["metadata"]
                ref = (resource.group_version, kind, meta["name"])
                labels = meta.get("labels") or {}
                # Checked again here: a selector typo must not turn into deleting someone else's objects.
                if ref in keep or any(labels.get(k) != v for k, v in required.items()):
                    continue
                self._delete(resource, namespace, meta["name"])
                deleted.append(ref)
                logger.info("pruned %s %s/%s", kind, namespace, meta["name"])
        return deleted

    def _delete(self, resource, namespace: str | None, name: str) -> bool:
        """Delete one object; False when it was already gone."""
        action = f"delete {_describe(resource.kind, namespace, name)}"
        try:
            self._dynamic.delete(resource, name=name, namespace=namespace, propagation_policy="Background")
        except ApiException as error:
            if error.status == 404:
                return False
            raise classify(error, action) from None
        except _TRANSPORT_ERRORS as error:
            raise classify(error, action) from None
        return True

    def delete_namespace(self, name: str) -> bool:
        """Start deleting a namespace and everything in it; False when it was already gone.

        Deletion is asynchronous in Kubernetes (the namespace is `Terminating` for a while): callers poll
        `namespace_gone` from a rescheduled job rather than waiting here.
        """
        return self._delete(self._resource("Namespace"), None, name)

    def create_job_from_cronjob(
        self, namespace: str, cronjob_name: str, job_name: str, labels: dict[str, str] | None = None
    ) -> dict:
        """Start a Job from a CronJob's template now, as `kubectl create job --from=cronjob/<name>` does.

        Idempotent: if the Job already exists (a retry after a timeout), the existing one is returned.
        """
        cronjob = self.get("CronJob", namespace, cronjob_name)
        if cronjob is None:
            raise PermanentClusterError(f"create job from CronJob {namespace}/{cronjob_name}: CronJob not found")
        template = copy.deepcopy(cronjob["spec"]["jobTemplate"])
        template_meta = template.get("metadata") or {}
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": job_name,
                "namespace": namespace,
                "labels": {**(template_meta.get("labels") or {}), **(labels or {})},
                "annotations": {
                    **(template_meta.get("annotations") or {}),
                    "cronjob.kubernetes.io/instantiate": "manual",
                },
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "CronJob",
                        "name": cronjob_name,
                        "uid": cronjob["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": template["spec"],
        }
        resource = self._resource("Job")
        try:
            created = self._dynamic.create(resource, body=job, namespace=namespace, field_manager=DEFAULT_FIELD_MANAGER)
            return created.to_dict()
        except ApiException as error:
            if error.status == 409 and "AlreadyExists" in (error.body or ""):
                existing = self._read(resource, namespace, job_name)
                if existing is not None:
                    return existing
            raise classify(error, f"create Job {namespace}/{job_name}") from None
        except _TRANSPORT_ERRORS as error:
            raise classify(error, f"create Job {namespace}/{job_name}") from None

    def patch_status(
        self, kind: str, namespace: str | None, name: str, status: dict, *, api_version: str | None = None
    ) -> dict:
        """Merge-patch an object's `/status` — what a controller does; used by tests and the sandbox."""
        resource = self._resource(kind, api_version)
        target = resource.subresources.get("status") or resource
        patched = self._call(
            f"patch status of {_describe(kind, namespace, name)}",
            lambda: self._dynamic.patch(
                target,
                body={"status": status},
                name=name,
                namespace=namespace,
                content_type="application/merge-patch+json",
            ),
        )
        return patched.to_dict()
