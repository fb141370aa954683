"""Template helpers for instances, requests, operations and backups: status badges and the backup chart."""

from django import template

from core.templatetags.core_ui import badge
from instances.backup_chart import render_backup_chart
from instances.choices import (
    BackupStatus,
    InstanceStatus,
    OperationStatus,
    RequestKind,
    RequestStatus,
    RolloutState,
)

register = template.Library()

# Bootstrap colour of each status; a status missing here falls back to "secondary".
INSTANCE_STATUS_COLOURS = {
    InstanceStatus.PROVISIONING: "info",
    InstanceStatus.RUNNING: "success",
    InstanceStatus.UPGRADING: "info",
    InstanceStatus.DEGRADED: "warning",
    InstanceStatus.FAILED: "danger",
    InstanceStatus.DELETING: "warning",
    InstanceStatus.DELETED: "secondary",
}
REQUEST_STATUS_COLOURS = {
    RequestStatus.SUBMITTED: "primary",
    RequestStatus.APPROVED: "info",
    RequestStatus.SCHEDULED: "info",
    RequestStatus.RUNNING: "warning",
    RequestStatus.SUCCEEDED: "success",
    RequestStatus.FAILED: "danger",
    RequestStatus.REJECTED: "danger",
    RequestStatus.CANCELLED: "secondary",
}


OPERATION_STATUS_COLOURS = {
    OperationStatus.QUEUED: "secondary",
    OperationStatus.RUNNING: "info",
    OperationStatus.SUCCEEDED: "success",
    OperationStatus.FAILED: "danger",
    OperationStatus.ERRORED: "danger",
}
ROLLOUT_STATE_COLOURS = {
    RolloutState.PROGRESSING: "info",
    RolloutState.DONE: "success",
    RolloutState.FAILED: "danger",
}
BACKUP_STATUS_COLOURS = {
    BackupStatus.RUNNING: "info",
    BackupStatus.SUCCEEDED: "warning",
    BackupStatus.VERIFIED: "success",
    BackupStatus.FAILED: "danger",
    BackupStatus.EXPIRED: "secondary",
}


def _badge_tag(name: str, choices, colours, doc: str) -> None:
    def tag(value):
        return badge(choices, colours, value)

    tag.__name__, tag.__doc__ = name, doc
    register.simple_tag(tag, name=name)


# One coloured badge tag per status (also usable on annotated values such as ``last_request_status``).
for _name, _choices, _colours in (
    ("instance_status_badge", InstanceStatus, INSTANCE_STATUS_COLOURS),
    ("request_status_badge", RequestStatus, REQUEST_STATUS_COLOURS),
    ("operation_status_badge", OperationStatus, OPERATION_STATUS_COLOURS),
    ("rollout_state_badge", RolloutState, ROLLOUT_STATE_COLOURS),
    ("backup_status_badge", BackupStatus, BACKUP_STATUS_COLOURS),
):
    _badge_tag(_name, _choices, _colours, f"A coloured badge for a {_choices.__name__} value.")


@register.filter
def request_kind_label(value):
    """The translated label of a request kind value, for annotated rows that are not model instances."""
    try:
        return RequestKind(value).label
    except ValueError:
        return value


@register.simple_tag
def backup_chart(backups, width=300, height=96):
    """The backup history as an inline SVG (see ``instances.backup_chart``)."""
    return render_backup_chart(backups, width=width, height=height)
