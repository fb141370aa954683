"""Query filters of the portal's endpoints.

Organisations are filtered by slug with a plain string filter, not a model choice: an invisible organisation
gives an empty list, never an error that would tell it exists.
"""

import django_filters

from core.choices import MembershipRole
from core.models import AuditEvent, Membership


class MembershipFilterSet(django_filters.FilterSet):
    """``?organisation=<slug>&user=<username>&role=admin|viewer``."""

    organisation = django_filters.CharFilter(field_name="organisation__slug")
    user = django_filters.CharFilter(field_name="user__username")
    role = django_filters.ChoiceFilter(choices=MembershipRole.choices)

    class Meta:
        model = Membership
        fields = ["organisation", "user", "role"]


class AuditEventFilterSet(django_filters.FilterSet):
    """``?action=request.approved&target_type=instances.changerequest&target_id=12&organisation=<slug>``."""

    action = django_filters.CharFilter()
    target_type = django_filters.CharFilter()
    target_id = django_filters.CharFilter()
    organisation = django_filters.CharFilter(field_name="organisation__slug")

    class Meta:
        model = AuditEvent
        fields = ["action", "target_type", "target_id", "organisation"]
