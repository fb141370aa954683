"""Query filters of the instances endpoints.

Related objects are filtered by slug with plain string filters, not model choices: an organisation or instance
the caller cannot see gives an empty list, never an error that would tell it exists.
"""

import django_filters
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from instances.choices import InstanceStatus, OperationKind, OperationStatus, RequestKind, RequestSource, RequestStatus
from instances.models import ChangeRequest, Instance, Operation


class InstanceFilterSet(django_filters.FilterSet):
    """``?organisation=<slug>&application=<slug>&status=<status>&version=<version>`` (status may repeat)."""

    organisation = django_filters.CharFilter(field_name="organisation__slug")
    application = django_filters.CharFilter(field_name="application__slug")
    status = django_filters.MultipleChoiceFilter(choices=InstanceStatus.choices)
    version = django_filters.CharFilter(field_name="current_version__version")

    class Meta:
        model = Instance
        fields = ["organisation", "application", "status", "version"]


class ChangeRequestFilterSet(django_filters.FilterSet):
    """``?status=&kind=`` (both may repeat), ``source``, ``organisation``, ``instance`` (slugs), ``open=true``."""

    status = django_filters.MultipleChoiceFilter(choices=RequestStatus.choices)
    kind = django_filters.MultipleChoiceFilter(choices=RequestKind.choices)
    source = django_filters.ChoiceFilter(choices=RequestSource.choices)
    organisation = django_filters.CharFilter(field_name="organisation__slug")
    instance = django_filters.CharFilter(method="filter_instance", label=_("Instance"))
    open = django_filters.BooleanFilter(method="filter_open", label=_("Open"))

    class Meta:
        model = ChangeRequest
        fields = ["status", "kind", "source", "organisation", "instance", "open"]

    def filter_instance(self, queryset, name, value):
        """Requests about the instance, including the one that asked for its creation."""
        return queryset.filter(Q(instance__slug=value) | Q(kind=RequestKind.CREATE, proposed_slug=value))

    def filter_open(self, queryset, name, value):
        """``open=true``: not finished yet; ``open=false``: rejected, cancelled, succeeded or failed."""
        open_statuses = Q(status__in=RequestStatus.open())
        return queryset.filter(open_statuses if value else ~open_statuses)


class OperationFilterSet(django_filters.FilterSet):
    """``?instance=<slug>&kind=&status=`` (kind and status may repeat), ``request=<id>``."""

    instance = django_filters.CharFilter(field_name="instance__slug")
    kind = django_filters.MultipleChoiceFilter(choices=OperationKind.choices)
    status = django_filters.MultipleChoiceFilter(choices=OperationStatus.choices)
    request = django_filters.NumberFilter(field_name="request_id")

    class Meta:
        model = Operation
        fields = ["instance", "kind", "status", "request"]
