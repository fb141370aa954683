"""Serializers of the portal's own objects: organisations, memberships and the audit trail (read only)."""

from django.db import models
from rest_framework import serializers

from core.api.fields import UTCDateTimeField
from core.models import ApiToken, AuditEvent, Membership, Organisation
from core.models.organisations import is_maintainer


class PortalModelSerializer(serializers.ModelSerializer):
    """Base of every model serializer of the API: dates and times go out in UTC."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: UTCDateTimeField,
    }


class OrganisationSummarySerializer(PortalModelSerializer):
    """How other objects show their organisation: its slug and name."""

    class Meta:
        model = Organisation
        fields = ["slug", "name"]


class OrganisationSerializer(PortalModelSerializer):
    """An organisation the caller can see."""

    url = serializers.HyperlinkedIdentityField(view_name="organisation-detail", lookup_field="slug")

    class Meta:
        model = Organisation
        fields = ["id", "url", "slug", "name", "created_at"]


class MembershipSerializer(PortalModelSerializer):
    """A user's role in an organisation."""

    organisation = OrganisationSummarySerializer(read_only=True)
    user = serializers.CharField(source="user.username", read_only=True)
    role_display = serializers.CharField(source="get_role_display", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "organisation", "user", "role", "role_display"]


class AuditEventSerializer(PortalModelSerializer):
    """One audit event; the client's IP address is shown to maintainers only."""

    organisation = OrganisationSummarySerializer(read_only=True, allow_null=True)
    actor = serializers.CharField(source="actor_label", read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "action",
            "organisation",
            "target_type",
            "target_id",
            "target_label",
            "before",
            "after",
            "reason",
            "request_id",
            "ip_address",
        ]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is None or not is_maintainer(request.user):
            data.pop("ip_address", None)
        return data


class ApiTokenSerializer(PortalModelSerializer):
    """A personal API token as listed: never the token itself (the portal does not have it), only its prefix."""

    user = serializers.CharField(source="user.username", read_only=True)
    prefix = serializers.CharField(source="token_key", read_only=True)
    revoked_by = serializers.CharField(source="revoked_by.username", read_only=True, allow_null=True)
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "user",
            "name",
            "prefix",
            "read_only",
            "created",
            "expiry",
            "last_used_at",
            "revoked_at",
            "revoked_by",
            "active",
        ]
