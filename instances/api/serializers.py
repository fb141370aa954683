"""Serializers of the catalog, instances and change requests.

Read serializers show nested summaries (slugs, names, version strings, usernames). The one write serializer,
:class:`ChangeRequestFileSerializer`, checks types and maps slugs to objects through the caller-visible
querysets, then hands over to the domain (``instances.workflow``); it never saves a model itself.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.fields import PortalDateTimeField, StrictCharField
from core.api.serializers import OrganisationSummarySerializer, PortalModelSerializer
from core.models import Organisation
from instances.choices import RequestKind, RequestSource
from instances.models import Application, ApplicationVersion, Backup, ChangeRequest, Instance
from instances.workflow import request_backup, request_create, request_delete, request_restore, request_update


@extend_schema_field(OpenApiTypes.URI)
class WebUrlField(serializers.Field):
    """The absolute address of the object's page in the portal, for links in CI logs."""

    def __init__(self, **kwargs):
        kwargs.update(source="*", read_only=True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        request = self.context.get("request")
        url = value.get_absolute_url()
        return request.build_absolute_uri(url) if request is not None else url


class ApplicationSerializer(PortalModelSerializer):
    """An application of the catalog with its deployable versions, newest first, and the available versions its
    scan policy blocks, with why (only a maintainer may request those, with a reason)."""

    url = serializers.HyperlinkedIdentityField(view_name="application-detail", lookup_field="slug")
    versions = serializers.SerializerMethodField()
    blocked_versions = serializers.SerializerMethodField()

    class Meta:
        model = Application
        fields = ["id", "url", "slug", "name", "description", "versions", "blocked_versions"]

    def get_versions(self, application) -> list[str]:
        # The view prefetches them into ``available_versions``, already ordered newest first.
        return [version.version for version in application.available_versions if version.deployable]

    def get_blocked_versions(self, application) -> list[dict]:
        return [
            {"version": version.version, "blockers": version.blocker_lines, "detail": version.blockers}
            for version in application.available_versions
            if not version.deployable
        ]


class InstanceSerializer(PortalModelSerializer):
    """One instance, with its organisation, application and current version."""

    url = serializers.HyperlinkedIdentityField(view_name="instance-detail", lookup_field="slug")
    web_url = WebUrlField()
    organisation = OrganisationSummarySerializer(read_only=True)
    application = serializers.CharField(source="application.slug", read_only=True)
    current_version = serializers.CharField(source="current_version.version", read_only=True, allow_null=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)

    class Meta:
        model = Instance
        fields = [
            "id",
            "url",
            "web_url",
            "slug",
            "hostname",
            "organisation",
            "application",
            "current_version",
            "status",
            "status_display",
            "created_at",
            "updated_at",
        ]


class RestoredBackupSerializer(PortalModelSerializer):
    """The backup a restore request puts back: when it was taken and its size."""

    taken_at = PortalDateTimeField(read_only=True)
    trigger_display = serializers.CharField(source="get_trigger_display", read_only=True)

    class Meta:
        model = Backup
        fields = ["id", "job_name", "trigger", "trigger_display", "taken_at", "size", "sha256"]


class ChangeRequestSerializer(PortalModelSerializer):
    """A change request as automation reads it: what, for whom, in which state, reviewed by whom."""

    url = serializers.HyperlinkedIdentityField(view_name="changerequest-detail")
    web_url = WebUrlField()
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    source_display = serializers.CharField(source="get_source_display", read_only=True)
    organisation = OrganisationSummarySerializer(read_only=True)
    application = serializers.CharField(source="application.slug", read_only=True)
    instance = serializers.CharField(source="instance.slug", read_only=True, allow_null=True)
    target_version = serializers.CharField(source="target_version.version", read_only=True, allow_null=True)
    backup = RestoredBackupSerializer(read_only=True, allow_null=True)
    requested_by = serializers.CharField(source="requested_by_label", read_only=True)
    reviewer = serializers.CharField(source="reviewer.username", read_only=True, allow_null=True)
    instruction_source = serializers.CharField(source="instruction_source.name", read_only=True, allow_null=True)

    class Meta:
        model = ChangeRequest
        fields = [
            "id",
            "url",
            "web_url",
            "kind",
            "kind_display",
            "status",
            "status_display",
            "source",
            "source_display",
            "organisation",
            "application",
            "instance",
            "target_name",
            "target_version",
            "backup",
            "scheduled_for",
            "comment",
            "requested_by",
            "reviewer",
            "reviewed_at",
            "reason",
            "result",
            "created_at",
            "updated_at",
            "started_at",
            "finished_at",
            "instruction_line",
            "instruction_source",
            "instruction_commit",
        ]


# Which optional fields each kind of request uses; anything else sent with a value is refused, not ignored.
KIND_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    RequestKind.CREATE: {
        "required": ("organisation", "application", "slug", "version"),
        "optional": ("scheduled_for", "override_reason"),
    },
    RequestKind.UPDATE: {"required": ("instance", "version"), "optional": ("scheduled_for", "override_reason")},
    RequestKind.DELETE: {"required": ("instance",), "optional": ("scheduled_for",)},
    RequestKind.BACKUP: {"required": ("instance",), "optional": ()},
    RequestKind.RESTORE: {"required": ("instance", "backup"), "optional": ("scheduled_for",)},
}
REFERENCE_FIELDS = (
    "organisation", "application", "slug", "instance", "version", "backup", "scheduled_for", "override_reason",
)  # fmt: skip


class ChangeRequestFileSerializer(serializers.Serializer):
    """Files a request: ``kind`` decides which fields are required; slugs are resolved for the caller.

    An organisation or instance the caller cannot see is reported as "not found" on its field (HTTP 400), with
    the same message as one that does not exist, so the answer never tells that it exists. Permissions, state
    and business rules are the domain's: it raises errors that the API's exception handler turns into
    400/403/409.
    """

    kind = serializers.ChoiceField(choices=RequestKind.choices)
    organisation = StrictCharField(required=False, allow_null=True, max_length=100)
    application = StrictCharField(required=False, allow_null=True, max_length=100)
    slug = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=200, trim_whitespace=False)
    instance = StrictCharField(required=False, allow_null=True, max_length=100)
    version = StrictCharField(required=False, allow_null=True, max_length=60)
    # A restore names the id of one of the instance's verified backups.
    backup = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=2**63 - 1)
    scheduled_for = PortalDateTimeField(required=False, allow_null=True)
    comment = StrictCharField(required=False, allow_blank=True, max_length=2000, default="")
    # A maintainer deploying a version the scan policy blocks says why (audited).
    override_reason = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=2000)

    default_error_messages = {
        "not_found": _("%(name)s not found."),
        "not_used": _("Not used when kind is %(kind)s."),
    }

    def validate(self, attrs):
        kind = attrs["kind"]
        spec = KIND_FIELDS[kind]
        errors: dict[str, list[str]] = {}
        for name in REFERENCE_FIELDS:
            given = attrs.get(name) is not None
            if name in spec["required"] and not given:
                errors[name] = [serializers.Field.default_error_messages["required"]]
            elif given and name not in spec["required"] + spec["optional"]:
                errors[name] = [self.error_messages["not_used"] % {"kind": kind}]
        if errors:
            raise serializers.ValidationError(errors)
        if kind == RequestKind.CREATE:
            attrs["organisation"] = self._lookup(
                "organisation", Organisation.objects.visible_to(self._user), slug=attrs["organisation"]
            )
            attrs["application"] = self._lookup("application", Application.objects.all(), slug=attrs["application"])
            application = attrs["application"]
        else:
            instances = Instance.objects.visible_to(self._user).select_related(
                "organisation", "application", "current_version"
            )
            attrs["instance"] = self._lookup("instance", instances, slug=attrs["instance"])
            application = attrs["instance"].application
        if attrs.get("backup") is not None:
            visible = Backup.objects.filter(instance__in=Instance.objects.visible_to(self._user))
            attrs["backup"] = self._lookup("backup", visible, pk=attrs["backup"])
        if attrs.get("version") is not None:
            attrs["version"] = self._lookup_version(application, attrs["version"])
        return attrs

    @property
    def _user(self):
        return self.context["request"].user

    def _lookup(self, field: str, queryset, **filters):
        """One object of ``queryset`` or a "not found" error on ``field``, whatever the reason it is missing."""
        found = queryset.filter(**filters).first()
        if found is None:
            label = queryset.model._meta.verbose_name.capitalize()
            raise serializers.ValidationError({field: [self.error_messages["not_found"] % {"name": label}]})
        return found

    def _lookup_version(self, application: Application, version: str) -> ApplicationVersion:
        found = application.versions.filter(version=version).first()
        if found is None:
            message = _("%(v)s is not an available version of %(app)s.") % {"v": version, "app": application}
            raise serializers.ValidationError({"version": [message]})
        return found

    def file(self, ctx) -> ChangeRequest:
        """Call the one domain entry point for this kind of request, with source "api"."""
        data = self.validated_data
        common = {"comment": data.get("comment", ""), "source": RequestSource.API}
        kind = data["kind"]
        if kind == RequestKind.CREATE:
            return request_create(
                ctx,
                organisation=data["organisation"],
                application=data["application"],
                slug=data["slug"],
                version=data["version"],
                scheduled_for=data.get("scheduled_for"),
                override_reason=data.get("override_reason") or "",
                **common,
            )
        if kind == RequestKind.UPDATE:
            return request_update(
                ctx,
                data["instance"],
                version=data["version"],
                scheduled_for=data.get("scheduled_for"),
                override_reason=data.get("override_reason") or "",
                **common,
            )
        if kind == RequestKind.DELETE:
            return request_delete(ctx, data["instance"], scheduled_for=data.get("scheduled_for"), **common)
        if kind == RequestKind.RESTORE:
            return request_restore(
                ctx, data["instance"], backup=data["backup"], scheduled_for=data.get("scheduled_for"), **common
            )
        return request_backup(ctx, data["instance"], **common)

    def create(self, validated_data):
        raise NotImplementedError("Requests are filed through file(), which calls the domain.")

    def update(self, instance, validated_data):
        raise NotImplementedError("Filed requests are changed only by their transitions.")


class ReviewSerializer(serializers.Serializer):
    """The body of approve, reject and cancel: an optional reason (the domain requires one to reject)."""

    reason = StrictCharField(required=False, allow_blank=True, max_length=2000, default="")
