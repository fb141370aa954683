"""The API root and the portal's read-only endpoints: organisations, memberships, audit events."""

from django.urls import NoReverseMatch
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.routers import APIRootView

from core.api.filtersets import AuditEventFilterSet, MembershipFilterSet
from core.api.mixins import SafeLookupMixin
from core.api.serializers import (
    ApiTokenSerializer,
    AuditEventSerializer,
    MembershipSerializer,
    OrganisationSerializer,
)
from core.audit import AuditContext
from core.models import ApiToken, AuditEvent, Membership, Organisation
from core.models.organisations import is_maintainer
from core.tokens import revoke_token


class PortalApiRootView(APIRootView):
    """SaaS Portal REST API, for automation (CI pipelines, scripts).

    Authenticate with a personal token in the `Authorization: Bearer <token>` header (`Token <token>` works too;
    a browser session as well). Each user creates their tokens on the portal's "API tokens" page (optionally
    read-only, optionally expiring); the API then acts with that user's rights: a functional admin files requests
    for their organisations, a maintainer approves or rejects them. Every change is recorded in the audit trail
    under the token's user and prefix. The OpenAPI schema is at `schema/`, its interactive documentation at
    `docs/`.

    Lists are paginated with `?limit=` and `?offset=`. Dates and times are ISO 8601: they are returned in UTC,
    and a value sent without an offset is read in the portal's time zone.

    Tenancy: a user sees only their organisations' objects; another organisation's object answers 404 at its
    URL, and a reference to it in a request body answers 400 "not found" on that field, exactly as a missing one.

    Errors are JSON: 400 names the fields in error, 401 a missing, revoked or expired token, 403 what the caller
    may not do, 404 what they cannot see, 409 a request in the wrong state, 413 a body over the size limit, 429
    too many calls (see `Retry-After`).
    """

    # Endpoints that are not viewsets of the router, listed on the root all the same.
    extra_links = {
        "registry-check": "registry-check",
        "instructions-import": "instructions-import",
        "instructions-export": "instructions-export",
        "schema": "api-schema",
        "docs": "api-docs",
    }

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        for key, url_name in self.extra_links.items():
            try:
                response.data[key] = reverse(url_name, request=request, format=kwargs.get("format"))
            except NoReverseMatch:
                continue
        return response


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


class RevokeSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class ApiTokenViewSet(SafeLookupMixin, viewsets.ReadOnlyModelViewSet):
    """The caller's API tokens (maintainers: everyone's, ``?user=<username>``); revoke one with its action.

    Tokens are created on the "API tokens" page or with ``manage.py create_api_token``, not through the API: a
    token could otherwise mint a longer-lived or broader one.
    """

    serializer_class = ApiTokenSerializer
    filterset_fields = {"user__username": ["exact"], "read_only": ["exact"]}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return ApiToken.objects.none()
        tokens = ApiToken.objects.select_related("user", "revoked_by")
        if not is_maintainer(self.request.user):
            tokens = tokens.filter(user=self.request.user)
        return tokens.order_by("-created", "-id")

    @extend_schema(request=RevokeSerializer, responses=ApiTokenSerializer)
    @action(detail=True, methods=["post"], serializer_class=RevokeSerializer)
    def revoke(self, request, pk=None):
        """Revoke the token (idempotent: revoking a revoked token changes nothing)."""
        token = self.get_object()
        body = RevokeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        revoke_token(AuditContext.from_request(request), token, reason=body.validated_data["reason"])
        return Response(ApiTokenSerializer(token, context=self.get_serializer_context()).data)
