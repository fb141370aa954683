"""Plain data about Kubernetes objects: what an apply did, and the Job ``kubectl create job --from`` would make."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AppliedObject:
    """One object of an apply and what happened to it: created, applied or unchanged."""

    api_version: str
    kind: str
    namespace: str
    name: str
    action: str
    resource_version: str
    # The manifest's ``kinds.object_key``: the one key both the record of an apply and its next lookup use.
    key: str

    @property
    def ref(self) -> tuple[str, str, str]:
        return (self.api_version, self.kind, self.name)


@dataclass
class ApplyResult:
    """The outcome of :meth:`ClusterClient.apply`, in apply order."""

    objects: list[AppliedObject] = field(default_factory=list)

    def with_action(self, action: str) -> list[AppliedObject]:
        return [o for o in self.objects if o.action == action]

    @property
    def changed(self) -> bool:
        return any(o.action != "unchanged" for o in self.objects)

    @property
    def refs(self) -> set[tuple[str, str, str]]:
        """(apiVersion, kind, name) of every applied object: the ``keep`` set for :meth:`ClusterClient.prune`."""
        return {o.ref for o in self.objects}

    @property
    def versions(self) -> dict[str, str]:
        """Object key -> resourceVersion after the apply, to pass as ``known_versions`` next time."""
        return {o.key: o.resource_version for o in self.objects}

    def summary(self) -> str:
        counts = {a: len(self.with_action(a)) for a in ("created", "applied", "unchanged")}
        return ", ".join(f"{n} {a}" for a, n in counts.items() if n) or "nothing applied"


def job_from_cronjob(
    cronjob: dict, job_name: str, labels: dict[str, str] | None = None, env: dict[str, str] | None = None
) -> dict:
    """The Job ``kubectl create job <job_name> --from=cronjob/<name>`` creates: the CronJob's template, owned by
    the CronJob (so its history limits clean the Job up like a scheduled run), with ``labels`` added and ``env``
    set in every container (replacing a variable of the same name)."""
    meta = cronjob["metadata"]
    template = copy.deepcopy(cronjob["spec"]["jobTemplate"])
    template_meta = template.get("metadata") or {}
    if env:
        pod_spec = ((template.get("spec") or {}).get("template") or {}).get("spec") or {}
        for container in pod_spec.get("containers") or []:
            kept = [item for item in container.get("env") or [] if item.get("name") not in env]
            container["env"] = kept + [{"name": name, "value": value} for name, value in env.items()]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name,
            "namespace": meta["namespace"],
            "labels": {**(template_meta.get("labels") or {}), **(labels or {})},
            "annotations": {**(template_meta.get("annotations") or {}), "cronjob.kubernetes.io/instantiate": "manual"},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": template["spec"],
    }
