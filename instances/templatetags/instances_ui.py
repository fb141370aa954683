"""Template helpers for instances, requests, operations and backups: status badges and the backup chart."""

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _

from core.templatetags.core_ui import badge, duration_short
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
    BackupStatus.SUCCEEDED: "success",
    BackupStatus.FAILED: "danger",
}
# Fill colours of the backup chart's bars (Bootstrap's success, danger and info).
BACKUP_BAR_COLOURS = {BackupStatus.SUCCEEDED: "#198754", BackupStatus.FAILED: "#dc3545"}
BACKUP_BAR_DEFAULT = "#0dcaf0"


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
def backup_chart(backups, width=300, height=48):
    """An inline SVG bar chart of backup durations, oldest on the left: height ∝ duration, colour by status."""
    rows = sorted(backups, key=lambda b: (b.started_at is None, b.started_at or 0, b.pk))
    if not rows:
        return ""
    durations = [b.duration.total_seconds() if b.duration else 0 for b in rows]
    longest = max(durations) or 1
    slot = width / len(rows)
    bar = max(slot * 0.7, 1)
    bars = []
    for index, (backup, seconds) in enumerate(zip(rows, durations, strict=True)):
        bar_height = max(height * seconds / longest, 1)
        bars.append(
            (
                f"{index * slot + (slot - bar) / 2:.1f}",
                f"{height - bar_height:.1f}",
                f"{bar:.1f}",
                f"{bar_height:.1f}",
                BACKUP_BAR_COLOURS.get(backup.status, BACKUP_BAR_DEFAULT),
                f"{backup.get_status_display()} · {duration_short(backup.duration)}",
            )
        )
    return format_html(
        '<svg class="backup-chart" role="img" width="{}" height="{}" viewBox="0 0 {} {}" aria-label="{}">{}</svg>',
        width,
        height,
        width,
        height,
        _("Backup durations"),
        format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
            bars,
        ),
    )
