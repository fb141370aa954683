"""What the engine did and sees, for automation: operations with their log, an instance's rollout, its backups.

Read only, and tenant-scoped like everything else: an operation of another organisation's instance is 404.
A traceback is never part of an answer (it stays in the database and the server log).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, viewsets

from core import messages
from core.api.fields import UTCDateTimeField
from core.api.mixins import SafeLookupMixin
from core.api.serializers import PortalModelSerializer
from instances.api.filtersets import OperationFilterSet
from instances.choices import RolloutState
from instances.models import Backup, Instance, Operation, RolloutSnapshot


class LogLineSerializer(serializers.Serializer):
    """One line of an operation's log, its message in the caller's language."""

    time = serializers.CharField(allow_null=True)
    level = serializers.CharField()
    message = serializers.CharField()

    def to_representation(self, line):
        if not isinstance(line, dict):
            return {"time": None, "level": "info", "message": str(line)}
        text = messages.render(line if "text" in line else None, line.get("message", ""))
        return {"time": line.get("time"), "level": line.get("level", "info"), "message": text}


class OperationSerializer(PortalModelSerializer):
    """A background run against the cluster: what it did to which instance, and how it ended."""

    url = serializers.HyperlinkedIdentityField(view_name="operation-detail")
    instance = serializers.CharField(source="instance.slug", read_only=True)
    request = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    target_version = serializers.CharField(source="target_version.version", read_only=True, allow_null=True)
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    error = serializers.CharField(source="error_display", read_only=True)

    class Meta:
        model = Operation
        fields = [
            "id",
            "url",
            "instance",
            "request",
            "kind",
            "kind_display",
            "status",
            "status_display",
            "target_version",
            "images",
            "attempts",
            "queued_at",
            "started_at",
            "finished_at",
            "error",
            "manifests_sha256",
        ]


class OperationDetailSerializer(OperationSerializer):
    """An operation with its log and the diff of what it applied."""

    log = LogLineSerializer(many=True, read_only=True)

    class Meta(OperationSerializer.Meta):
        fields = [*OperationSerializer.Meta.fields, "log", "diff"]


class OperationViewSet(SafeLookupMixin, viewsets.ReadOnlyModelViewSet):
    """Operations of the caller's instances, newest first; the detail adds the log (``?instance=<slug>``)."""

    filterset_class = OperationFilterSet

    def get_queryset(self):
        visible = Instance.objects.visible_to(self.request.user)
        operations = Operation.objects.filter(instance__in=visible).select_related("instance", "target_version")
        if self.action == "list":
            operations = operations.defer("log", "manifests", "diff", "traceback")
        return operations.order_by("-queued_at", "-id")

    def get_serializer_class(self):
        return OperationDetailSerializer if self.action == "retrieve" else OperationSerializer


class RolloutWorkloadSerializer(PortalModelSerializer):
    """One workload (Deployment, StatefulSet…) of an instance, as the last status sync saw it."""

    observed_at = UTCDateTimeField(read_only=True)

    class Meta:
        model = RolloutSnapshot
        fields = [
            "kind",
            "component",
            "desired",
            "updated",
            "ready",
            "available",
            "state",
            "message",
            "conditions",
            "images",
            "observed_at",
        ]


class RolloutSerializer(serializers.Serializer):
    """An instance's rollout: every workload's ready/desired replicas and conditions, and the operation at work."""

    instance = serializers.CharField(source="slug")
    status = serializers.CharField()
    current_version = serializers.CharField(source="current_version.version", allow_null=True)
    ready = serializers.SerializerMethodField()
    workloads = RolloutWorkloadSerializer(source="snapshots", many=True)
    current_operation = serializers.SerializerMethodField()

    def get_ready(self, instance) -> bool:
        """Every workload done and at its desired size (false when none was seen yet)."""
        snapshots = instance.snapshots
        return bool(snapshots) and all(s.state == RolloutState.DONE and s.ready >= s.desired for s in snapshots)

    @extend_schema_field(OperationSerializer(allow_null=True))
    def get_current_operation(self, instance):
        if instance.current_operation is None:
            return None
        return OperationSerializer(instance.current_operation, context=self.context).data


class BackupSerializer(PortalModelSerializer):
    """One run of an instance's timemachine, and its dump as the portal verified it (key, size in bytes, SHA-256);
    a verified one downloads at ``…/instances/<slug>/backups/<id>/download/``."""

    trigger_display = serializers.CharField(source="get_trigger_display", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = Backup
        fields = [
            "id",
            "job_name",
            "trigger",
            "trigger_display",
            "status",
            "status_display",
            "started_at",
            "finished_at",
            "duration_seconds",
            "message",
            "storage_key",
            "size",
            "sha256",
            "verified_at",
            "expired_at",
        ]

    def get_duration_seconds(self, backup) -> float | None:
        if backup.started_at is None or backup.finished_at is None:
            return None
        return (backup.finished_at - backup.started_at).total_seconds()
