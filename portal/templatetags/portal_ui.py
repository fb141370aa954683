"""Template helpers of the browser UI: Bootstrap form fields, status badges, compact audit snapshots."""

from django import forms, template
from django.utils.html import format_html

from instances.choices import InstanceStatus, RequestKind, RequestStatus

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
