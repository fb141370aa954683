"""Template helpers of the browser UI: Bootstrap form fields, badges, compact audit snapshots, durations, diffs."""

from django import forms, template
from django.utils.html import format_html

from core import messages
from core.models import JobRunStatus

register = template.Library()


def badge(choices, colours, value):
    """A Bootstrap badge with the translated label of ``value`` (a member of ``choices``) and its colour."""
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


JOB_STATUS_COLOURS = {JobRunStatus.RUNNING: "info", JobRunStatus.SUCCEEDED: "success", JobRunStatus.FAILED: "danger"}


@register.simple_tag
def job_status_badge(value):
    return badge(JobRunStatus, JOB_STATUS_COLOURS, value)


@register.filter
def log_message(line):
    """A stored log line's sentence in the reader's language (its English text when it was not kept as one)."""
    if not isinstance(line, dict):
        return line
    return messages.render(line if "text" in line else None, line.get("message", ""))


@register.filter
def iso_datetime(value):
    """An ISO 8601 string (as stored in an operation's log) as a datetime, or the string when it is not one."""
    from django.utils.dateparse import parse_datetime

    try:
        return parse_datetime(value) or value
    except (TypeError, ValueError):
        return value
