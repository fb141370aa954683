"""Filters of the fleet and request lists.

Choices that name organisations are limited to what the user may see, so a filter never reveals that another
organisation exists. Invalid filter values are ignored (and shown as errors on the filter form), never a 500.
"""

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from core.models import Organisation
from instances.choices import InstanceStatus, RequestKind, RequestStatus
from instances.forms import VersionChoiceField
from instances.models import Application, ApplicationVersion, ChangeRequest, Instance


def visible_organisations(request):
    if request is None:
        return Organisation.objects.none()
    return Organisation.objects.visible_to(request.user).order_by("name")


class VersionFilter(django_filters.ModelChoiceFilter):
    field_class = VersionChoiceField


class InstanceFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        field_name="slug",
        lookup_expr="icontains",
        label=_("Name contains"),
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Search by name")}),
    )
    organisation = django_filters.ModelChoiceFilter(
        queryset=visible_organisations, to_field_name="slug", label=_("Organisation"), empty_label=_("All")
    )
    application = django_filters.ModelChoiceFilter(
        queryset=Application.objects.order_by("name"),
        to_field_name="slug",
        label=_("Application"),
        empty_label=_("All"),
    )
    version = VersionFilter(
        field_name="current_version",
        queryset=ApplicationVersion.objects.select_related("application"),
        label=_("Version"),
        empty_label=_("All"),
    )
    status = django_filters.ChoiceFilter(choices=InstanceStatus.choices, label=_("Status"), empty_label=_("All"))

    class Meta:
        model = Instance
        fields = ["q", "organisation", "application", "version", "status"]


class ChangeRequestFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=RequestStatus.choices, label=_("Status"), empty_label=_("All"))
    kind = django_filters.ChoiceFilter(choices=RequestKind.choices, label=_("Kind"), empty_label=_("All"))
    organisation = django_filters.ModelChoiceFilter(
        queryset=visible_organisations, to_field_name="slug", label=_("Organisation"), empty_label=_("All")
    )

    class Meta:
        model = ChangeRequest
        fields = ["status", "kind", "organisation"]
