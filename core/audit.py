"""Recording audit events.

Domain code receives the actor explicitly as an :class:`AuditContext` (never from a thread-local), so the
same call records a web user, an API token, or the system reading an instructions file.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models

from core.models import AuditEvent


@dataclass(frozen=True)
class AuditContext:
    """Who acts, and from where."""

    user: object | None = None
    label: str = ""
    request_id: str = ""
    ip_address: str | None = None

    @classmethod
    def from_request(cls, request) -> AuditContext:
        user = request.user if request.user.is_authenticated else None
        return cls(
            user=user,
            label=user.get_username() if user else "anonymous",
            request_id=getattr(request, "request_id", ""),
            ip_address=getattr(request, "client_ip", None),
        )

    @classmethod
    def system(cls, label: str) -> AuditContext:
        return cls(user=None, label=f"system: {label}")

    @classmethod
    def engine(cls, operation_pk: int | None = None) -> AuditContext:
        """The deployment engine, acting for one operation (its id is the event's request id)."""
        return cls(user=None, label="engine", request_id=f"operation-{operation_pk}" if operation_pk else "")

    @property
    def actor_label(self) -> str:
        if self.label:
            return self.label
        return self.user.get_username() if self.user else "system"


def record(
    ctx: AuditContext,
    action: str,
    target: models.Model,
    *,
    organisation=None,
    organisation_id: int | None = None,
    label: str | None = None,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
) -> AuditEvent:
    """Append one audit event about ``target`` (``label`` names it when ``str(target)`` would cost a query)."""
    return AuditEvent.objects.create(
        actor=ctx.user if ctx.user is not None and getattr(ctx.user, "pk", None) else None,
        actor_label=ctx.actor_label[:200],
        action=action,
        organisation_id=organisation.pk if organisation is not None else organisation_id,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_label=(str(target) if label is None else label)[:200],
        before=before,
        after=after,
        reason=reason,
        request_id=ctx.request_id,
        ip_address=ctx.ip_address,
    )
