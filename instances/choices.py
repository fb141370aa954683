"""Statuses and kinds of instances and change requests."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class InstanceStatus(models.TextChoices):
    PROVISIONING = "provisioning", _("Provisioning")
    RUNNING = "running", _("Running")
    UPGRADING = "upgrading", _("Upgrading")
    DEGRADED = "degraded", _("Degraded")
    FAILED = "failed", _("Failed")
    DELETING = "deleting", _("Deleting")
    DELETED = "deleted", _("Deleted")

    @classmethod
    def observed(cls) -> tuple[str, ...]:
        """Statuses status sync derives from the cluster."""
        return (cls.RUNNING, cls.DEGRADED)


# The instance transition table: status -> statuses it may move to. Every change goes through
# Instance.transition(), which also lets an instance "stay" in its status while other fields change.
INSTANCE_TRANSITIONS: dict[str, frozenset[str]] = {
    InstanceStatus.PROVISIONING: frozenset({InstanceStatus.RUNNING, InstanceStatus.FAILED, InstanceStatus.DELETING}),
    InstanceStatus.RUNNING: frozenset(
        {InstanceStatus.UPGRADING, InstanceStatus.DEGRADED, InstanceStatus.FAILED, InstanceStatus.DELETING}
    ),
    InstanceStatus.UPGRADING: frozenset({InstanceStatus.RUNNING, InstanceStatus.DEGRADED, InstanceStatus.FAILED}),
    InstanceStatus.DEGRADED: frozenset(
        {InstanceStatus.RUNNING, InstanceStatus.UPGRADING, InstanceStatus.FAILED, InstanceStatus.DELETING}
    ),
    InstanceStatus.FAILED: frozenset(
        {InstanceStatus.RUNNING, InstanceStatus.UPGRADING, InstanceStatus.DEGRADED, InstanceStatus.DELETING}
    ),
    InstanceStatus.DELETING: frozenset({InstanceStatus.DELETED, InstanceStatus.RUNNING, InstanceStatus.DEGRADED}),
    InstanceStatus.DELETED: frozenset(),
}


class RequestKind(models.TextChoices):
    CREATE = "create", _("Create")
    UPDATE = "update", _("Upgrade")
    DELETE = "delete", _("Delete")
    BACKUP = "backup", _("Backup")
    RESTORE = "restore", _("Restore")


# At most one open request of these kinds per instance (a database constraint enforces it): each replaces what
# runs or what the database holds, so two of them would race.
EXCLUSIVE_KINDS = (RequestKind.UPDATE, RequestKind.DELETE, RequestKind.RESTORE)


class RequestSource(models.TextChoices):
    WEB = "web", _("Web")
    API = "api", _("API")
    INSTRUCTIONS = "instructions", _("Instructions file")


class RequestStatus(models.TextChoices):
    SUBMITTED = "submitted", _("Submitted")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    CANCELLED = "cancelled", _("Cancelled")
    SCHEDULED = "scheduled", _("Scheduled")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")

    @classmethod
    def open(cls) -> tuple[str, ...]:
        """Statuses of a request that is not finished yet."""
        return (cls.SUBMITTED, cls.APPROVED, cls.SCHEDULED, cls.RUNNING)

    @classmethod
    def terminal(cls) -> tuple[str, ...]:
        return (cls.REJECTED, cls.CANCELLED, cls.SUCCEEDED, cls.FAILED)

    @classmethod
    def cancellable(cls) -> tuple[str, ...]:
        """Until the work starts, the requester or a maintainer may still cancel."""
        return (cls.SUBMITTED, cls.APPROVED, cls.SCHEDULED)


# The request transition table: status -> statuses it may move to. Every change goes through ChangeRequest methods.
REQUEST_TRANSITIONS: dict[str, frozenset[str]] = {
    RequestStatus.SUBMITTED: frozenset({RequestStatus.APPROVED, RequestStatus.REJECTED, RequestStatus.CANCELLED}),
    RequestStatus.APPROVED: frozenset({RequestStatus.SCHEDULED, RequestStatus.RUNNING, RequestStatus.CANCELLED}),
    RequestStatus.SCHEDULED: frozenset({RequestStatus.RUNNING, RequestStatus.CANCELLED}),
    RequestStatus.RUNNING: frozenset({RequestStatus.SUCCEEDED, RequestStatus.FAILED}),
    RequestStatus.REJECTED: frozenset(),
    RequestStatus.CANCELLED: frozenset(),
    RequestStatus.SUCCEEDED: frozenset(),
    RequestStatus.FAILED: frozenset(),
}


class InstanceSize(models.TextChoices):
    SMALL = "small", _("Small")
    MEDIUM = "medium", _("Medium")
    LARGE = "large", _("Large")


class ClusterConnection(models.TextChoices):
    KUBECONFIG = "kubeconfig", _("Kubeconfig")
    IN_CLUSTER = "in_cluster", _("In-cluster service account")


class OperationKind(models.TextChoices):
    DEPLOY = "deploy", _("Deploy")
    UPGRADE = "upgrade", _("Upgrade")
    DELETE = "delete", _("Delete")
    BACKUP = "backup", _("Backup")
    RESTORE = "restore", _("Restore")
    # Restores the latest verified backup into a scratch database on the cluster; the instance is not touched.
    DRILL = "drill", _("Restore drill")


class OperationStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    ERRORED = "errored", _("Errored")

    @classmethod
    def active(cls) -> tuple[str, ...]:
        return (cls.QUEUED, cls.RUNNING)

    @classmethod
    def terminal(cls) -> tuple[str, ...]:
        return (cls.SUCCEEDED, cls.FAILED, cls.ERRORED)


# The operation transition table. A running operation goes back to "queued" to be retried after a transient
# cluster error; a queued one can end without running (its instance's sandbox restarted, for instance).
OPERATION_TRANSITIONS: dict[str, frozenset[str]] = {
    OperationStatus.QUEUED: frozenset({OperationStatus.RUNNING, OperationStatus.FAILED, OperationStatus.ERRORED}),
    OperationStatus.RUNNING: frozenset(
        {OperationStatus.QUEUED, OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.ERRORED}
    ),
    OperationStatus.SUCCEEDED: frozenset(),
    OperationStatus.FAILED: frozenset(),
    OperationStatus.ERRORED: frozenset(),
}


class BackupTrigger(models.TextChoices):
    SCHEDULE = "schedule", _("Schedule")
    MANUAL = "manual", _("Manual")
    PRE_UPGRADE = "pre-upgrade", _("Before upgrade")
    FINAL = "final", _("Before deletion")
    PRE_RESTORE = "pre-restore", _("Before restore")


class BackupStatus(models.TextChoices):
    """A backup's life: its Job runs, uploads (succeeded), the portal checks the object in the storage (verified
    or failed), and retention deletes it from the storage one day (expired)."""

    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Uploaded, not verified yet")
    VERIFIED = "verified", _("Verified")
    FAILED = "failed", _("Failed")
    EXPIRED = "expired", _("Expired (deleted from the storage)")

    @classmethod
    def finished(cls) -> tuple[str, ...]:
        return (cls.SUCCEEDED, cls.VERIFIED, cls.FAILED, cls.EXPIRED)


class RolloutState(models.TextChoices):
    PROGRESSING = "progressing", _("Progressing")
    DONE = "done", _("Ready")
    FAILED = "failed", _("Failed")


class Component(models.TextChoices):
    """The parts of an application whose images a registry holds."""

    CORE = "core", _("core")
    NGINX = "nginx", _("web server (nginx)")
    DATABASE = "database", _("database")
    MEMCACHED = "memcached", _("memcached")
    BACKUP = "backup", _("backup (timemachine)")


class VersionSource(models.TextChoices):
    MANUAL = "manual", _("typed in")
    REGISTRY = "registry", _("registry")
