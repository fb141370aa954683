"""Filters of the audit trail page."""

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from core.models import AuditEvent, Organisation


def audit_actions():
    """The actions that occur in the trail, for the action filter (one query, at form construction)."""
    actions = AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()
    return [(action, action) for action in actions]


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")


class AuditEventFilterSet(django_filters.FilterSet):
    action = django_filters.ChoiceFilter(choices=audit_actions, label=_("Action"), empty_label=_("All"))
    actor = django_filters.CharFilter(field_name="actor_label", lookup_expr="icontains", label=_("Actor"))
    organisation = django_filters.ModelChoiceFilter(
        queryset=Organisation.objects.order_by("name"),
        to_field_name="slug",
        label=_("Organisation"),
        empty_label=_("All"),
    )
    # Days are those of the portal's time zone: with USE_TZ, __date converts before truncating.
    since = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__gte", label=_("From"), widget=DateInput()
    )
    until = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__lte", label=_("Until"), widget=DateInput()
    )

    class Meta:
        model = AuditEvent
        fields = ["action", "actor", "organisation", "since", "until"]
