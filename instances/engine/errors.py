"""Expected failures of an operation: each ends it "failed" with a message the requester can act on.

They are domain errors (``core.errors.DomainError``) carrying a translatable :class:`~core.messages.Message`.
Anything else an operation raises is a bug: the runner ends the operation with a reference to the server log.
"""

from __future__ import annotations

from core.errors import DomainError
from core.messages import Message, msg


class OperationFailed(DomainError):
    """An operation could not do its work, for a reason that is not a bug."""

    def __init__(self, text: str, **params):
        self.reason = Message(text, params)
        super().__init__(self.reason.english)


class RenderFailed(OperationFailed):
    """Kustomize refused the base or the overlay, or the instance's settings are invalid."""

    def __init__(self, detail: str):
        super().__init__(msg("the manifests could not be rendered: %(detail)s"), detail=detail)


class ClusterRefused(OperationFailed):
    """The API server refused a request that retrying will not fix (forbidden, invalid object, bad kubeconfig)."""

    def __init__(self, detail: str):
        super().__init__(msg("the cluster refused the change: %(detail)s"), detail=detail)


class KubeconfigUnreadable(OperationFailed):
    """The cluster's kubeconfig cannot be used: stored under encryption keys the portal no longer has, or not a
    usable kubeconfig."""

    def __init__(self, detail: str):
        super().__init__(msg("the cluster's kubeconfig cannot be read: %(detail)s"), detail=detail)


class ClusterUnreachable(OperationFailed):
    """Transient cluster errors outlasted every retry."""

    def __init__(self, attempts: int, detail: str):
        super().__init__(
            msg("gave up after %(attempts)s attempts; last error: %(detail)s"), attempts=attempts, detail=detail
        )


class RolloutFailed(OperationFailed):
    """The new workloads did not become available: a deadline passed, or an image cannot run."""


class BackupFailed(OperationFailed):
    """The timemachine Job failed or did not finish in time."""


class NamespaceStuck(OperationFailed):
    """A deleted namespace did not go away in time."""
