"""Template helpers of the browser UI: Bootstrap form fields, status badges, compact audit snapshots."""

from django import forms, template
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _

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


def _badge(choices, colours, value):
    if not value:
        return ""
    try:
        label = choices(value).label
    except ValueError:
        label = value
    colour = colours.get(value, "secondary")
    # Light backgrounds need dark text to stay readable.
    text = "text-dark" if colour in ("warning", "info") else ""
    return format_html('<span class="badge text-bg-{} {}">{}</span>', colour, text, label)


@register.simple_tag
def instance_status_badge(value):
    """A coloured badge for an instance status value."""
    return _badge(InstanceStatus, INSTANCE_STATUS_COLOURS, value)


@register.simple_tag
def request_status_badge(value):
    """A coloured badge for a change request status value (also used on annotated ``last_request_status``)."""
    return _badge(RequestStatus, REQUEST_STATUS_COLOURS, value)


@register.filter
def request_kind_label(value):
    """The translated label of a request kind value, for annotated rows that are not model instances."""
    try:
        return RequestKind(value).label
    except ValueError:
        return value


def widget_css_class(widget) -> str:
    if isinstance(widget, forms.CheckboxInput):
        return "form-check-input"
    if isinstance(widget, forms.Select | forms.SelectMultiple):
        return "form-select"
    return "form-control"


@register.inclusion_tag("includes/field.html")
def bootstrap_field(field, size=""):
    """Render one bound field the Bootstrap way: label, widget, help text and errors.

    Works for any form (ours and allauth's), so templates need no widget tweaking library.
    """
    widget = field.field.widget
    css = widget_css_class(widget)
    if size and css != "form-check-input":
        css += f" {css}-{size}"
    if field.errors:
        css += " is-invalid"
    existing = widget.attrs.get("class", "")
    attrs = {"class": f"{existing} {css}".strip()}
    if field.help_text:
        attrs["aria-describedby"] = f"{field.auto_id}_help"
    return {
        "field": field,
        "widget_html": field.as_widget(attrs=attrs),
        "is_checkbox": isinstance(widget, forms.CheckboxInput),
    }


@register.filter
def audit_changes(event):
    """Pairs ``(key, before, after)`` of the values an audit event changed (or set, when there is no before)."""
    before = event.before if isinstance(event.before, dict) else {}
    after = event.after if isinstance(event.after, dict) else {}
    changes = []
    for key in sorted(after.keys() | before.keys()):
        old, new = before.get(key), after.get(key)
        if old != new:
            changes.append((key, "" if old is None else old, "" if new is None else new))
    return changes


# --- the deployment engine: operations, rollouts, backups ---------------------------------------------------

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


@register.simple_tag
def operation_status_badge(value):
    return _badge(OperationStatus, OPERATION_STATUS_COLOURS, value)


@register.simple_tag
def rollout_state_badge(value):
    return _badge(RolloutState, ROLLOUT_STATE_COLOURS, value)


@register.simple_tag
def backup_status_badge(value):
    return _badge(BackupStatus, BACKUP_STATUS_COLOURS, value)


@register.filter
def duration_short(value):
    """A timedelta as `45 s`, `2 min 05 s` or `1 h 02 min`; `—` when there is none."""
    if value is None:
        return "—"
    seconds = max(int(value.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


@register.filter
def diff_lines(text):
    """The lines of a unified diff with the CSS class of each: added, removed, hunk header or context."""
    lines = []
    for line in (text or "").splitlines():
        if line.startswith(("+++", "---")):
            css = "diff-file"
        elif line.startswith("+"):
            css = "diff-add"
        elif line.startswith("-"):
            css = "diff-del"
        elif line.startswith("@@"):
            css = "diff-hunk"
        else:
            css = ""
        lines.append((css, line))
    return lines


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


@register.filter
def iso_datetime(value):
    """An ISO 8601 string (as stored in an operation's log) as a datetime, or the string when it is not one."""
    from django.utils.dateparse import parse_datetime

    try:
        return parse_datetime(value) or value
    except (TypeError, ValueError):
        return value
