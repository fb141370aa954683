"""Endpoints of the catalog, instances and change requests.

Views stay thin (NetBox/AWX habit): scope the queryset to what the caller may see, check the input with a
serializer, make one domain call, and let the API's exception handler turn domain errors into 400/403/409.
"""

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api.mixins import SafeLookupMixin
from core.audit import AuditContext
from instances import workflow
from instances.api.engine import BackupSerializer, RolloutSerializer
from instances.api.filtersets import ChangeRequestFilterSet, InstanceFilterSet
from instances.api.serializers import (
    ApplicationSerializer,
    ChangeRequestFileSerializer,
    ChangeRequestSerializer,
    InstanceSerializer,
    ReviewSerializer,
)
from instances.backup_downloads import download_url
from instances.choices import OperationStatus
from instances.models import Application, ApplicationVersion, ChangeRequest, Instance, Operation


class ApplicationViewSet(SafeLookupMixin, viewsets.ReadOnlyModelViewSet):
    """The catalog: every application, with its available versions newest first."""

    serializer_class = ApplicationSerializer
    lookup_field = "slug"
    filterset_fields = ["slug"]

    def get_queryset(self):
        available = ApplicationVersion.objects.available().order_by("-sort_key")
        return Application.objects.prefetch_related(
            Prefetch("versions", queryset=available, to_attr="available_versions")
        )


class InstanceViewSet(SafeLookupMixin, viewsets.ReadOnlyModelViewSet):
    """Instances of the caller's organisations (every one for maintainers); another organisation's is 404.

    ``…/rollout/`` gives every workload's ready/desired replicas and the operation at work; ``…/backups/`` the
    history of its timemachine, newest first.
    """

    serializer_class = InstanceSerializer
    filterset_class = InstanceFilterSet
    lookup_field = "slug"

    def get_queryset(self):
        return Instance.objects.visible_to(self.request.user).select_related(
            "organisation", "application", "current_version"
        )

    @extend_schema(responses=RolloutSerializer)
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def rollout(self, request, slug=None):
        """The rollout of one instance, as the last status sync saw it."""
        instance = self.get_object()
        instance.snapshots = list(instance.rollout_snapshots.order_by("kind", "component"))
        instance.current_operation = (
            Operation.objects.filter(instance=instance, status__in=OperationStatus.active())
            .select_related("instance", "target_version")
            .defer("log", "manifests", "diff", "traceback")
            .first()
        )
        return Response(RolloutSerializer(instance, context=self.get_serializer_context()).data)

    @extend_schema(responses=BackupSerializer(many=True))
    @action(detail=True, methods=["get"], filterset_class=None, serializer_class=BackupSerializer)
    def backups(self, request, slug=None):
        """The backups of one instance, newest first (paginated)."""
        instance = self.get_object()
        page = self.paginate_queryset(instance.backups.order_by("-started_at", "-id"))
        return self.get_paginated_response(BackupSerializer(page, many=True).data)

    @extend_schema(request=None, responses={302: None})
    @action(
        detail=True,
        methods=["get"],
        url_path=r"backups/(?P<backup_id>[0-9]+)/download",
        pagination_class=None,
        filterset_class=None,
    )
    def download_backup(self, request, slug=None, backup_id=None):
        """302 to a short-lived signed link of a verified backup's dump (functional admins and maintainers;
        audited). A viewer gets 403, a backup that is not verified 409."""
        instance = self.get_object()
        backup = get_object_or_404(instance.backups, pk=backup_id)  # the related manager sets backup.instance
        url = download_url(AuditContext.from_request(request), request.user, backup)
        return Response(status=status.HTTP_302_FOUND, headers={"Location": url})


class ChangeRequestViewSet(SafeLookupMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Change requests of the caller's organisations; file one with POST, review one with its actions.

    A request of another organisation answers 404 at its URL (and on its actions). Filing refers to
    organisations and instances by slug in the body: one the caller cannot see is a 400 "not found" on that
    field, worded as for one that does not exist (see :class:`ChangeRequestFileSerializer`).
    """

    filterset_class = ChangeRequestFilterSet

    def get_queryset(self):
        return ChangeRequest.objects.visible_to(self.request.user).select_related(
            "organisation", "application", "instance", "target_version", "backup", "reviewer", "instruction_source"
        )

    def get_serializer_class(self):
        if self.action == "create":
            return ChangeRequestFileSerializer
        if self.action in ("approve", "reject", "cancel"):
            return ReviewSerializer
        return ChangeRequestSerializer

    def _reply(self, change_request: ChangeRequest, status_code: int = status.HTTP_200_OK) -> Response:
        """The request as it is now in the database, in the read format."""
        fresh = self.get_queryset().get(pk=change_request.pk)
        data = ChangeRequestSerializer(fresh, context=self.get_serializer_context()).data
        # str(): the serializer gives a hyperlink object, and a WSGI server accepts only strings as header values.
        headers = {"Location": str(data["url"])} if status_code == status.HTTP_201_CREATED else None
        return Response(data, status=status_code, headers=headers)

    def create(self, request, *args, **kwargs):
        """File a create, update, delete, backup or restore request (source "api")."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        change_request = serializer.file(AuditContext.from_request(request))
        return self._reply(change_request, status.HTTP_201_CREATED)

    def _review(self, request, perform) -> Response:
        """AWX-style action: find the request (404 if invisible), read the reason, make one domain call."""
        change_request = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        perform(AuditContext.from_request(request), change_request, serializer.validated_data["reason"])
        return self._reply(change_request)

    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve a submitted request (maintainers, never their own); an optional "reason"."""
        return self._review(request, workflow.approve)

    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Reject a submitted request (maintainers, never their own); "reason" is required."""
        return self._review(request, workflow.reject)

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Withdraw a request before it starts (its requester or a maintainer); an optional "reason"."""
        return self._review(request, lambda ctx, change_request, reason: change_request.cancel(ctx, reason))
