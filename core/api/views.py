"""The API root and the portal's read-only endpoints: organisations, memberships, audit events."""

from rest_framework import viewsets
from rest_framework.routers import APIRootView

from core.api.filtersets import AuditEventFilterSet, MembershipFilterSet
from core.api.mixins import SafeLookupMixin
from core.api.serializers import AuditEventSerializer, MembershipSerializer, OrganisationSerializer
from core.models import AuditEvent, Membership, Organisation


class PortalApiRootView(APIRootView):
    """SaaS Portal REST API, for automation (CI pipelines, scripts).

    Authenticate with a token in the `Authorization: Token <key>` header (a browser session works too).
    There is no endpoint that issues tokens: an administrator creates one per user in the Django admin
    (*Auth Token → Tokens*), and the API then acts with that user's rights: a functional admin files requests
    for their organisations, a maintainer approves or rejects them. Every call is recorded in the audit trail
    under the token's user.

    Lists are paginated with `?limit=` and `?offset=`. Dates and times are ISO 8601: they are returned in UTC,
    and a value sent without an offset is read in the portal's time zone.

    Tenancy: a user sees only their organisations' objects; another organisation's object answers 404 at its
    URL, and a reference to it in a request body answers 400 "not found" on that field, exactly as a missing one.
    """


class OrganisationViewSet(SafeLookupMixin, viewsets.ReadOnlyModelViewSet):
    """Organisations the caller belongs to (every one for maintainers)."""

    serializer_class = OrganisationSerializer
    lookup_field = "slug"
    filterset_fields = ["slug"]

    def get_queryset(self):
        return Organisation.objects.visible_to(self.request.user)


class MembershipViewSet(SafeLookupMixin, viewsets.ReadOnlyModelViewSet):
    """Who belongs to the caller's organisations, and with which role."""

    serializer_class = MembershipSerializer
    filterset_class = MembershipFilterSet

    def get_queryset(self):
        organisations = Organisation.objects.visible_to(self.request.user)
        return Membership.objects.filter(organisation__in=organisations).select_related("organisation", "user")


class AuditEventViewSet(SafeLookupMixin, viewsets.ReadOnlyModelViewSet):
    """The audit trail of the caller's organisations (all of it for maintainers); read only."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet

    def get_queryset(self):
        return AuditEvent.objects.visible_to(self.request.user).select_related("organisation")
