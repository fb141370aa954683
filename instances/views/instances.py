"""Instance pages: the fleet list, one instance, and the forms that request a change to it."""

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.generic import DetailView

from core.models.organisations import can_request_for, is_maintainer, requestable_organisations
from core.views import FilteredListView
from instances import workflow
from instances.filtersets import InstanceFilterSet
from instances.forms import RequestBackupForm, RequestCreateForm, RequestDeleteForm, RequestUpdateForm
from instances.models import ApplicationVersion, Instance
from instances.queries import (
    backup_overdue,
    instance_audit_events,
    instance_requests,
    instances_with_backup_health,
    instances_with_last_drill,
    instances_with_last_request,
)
from instances.views.base import DomainFormView
from registry.models import TagOverwrite

INSTANCE_RELATED = ("organisation", "application", "current_version", "cluster")
LAST_OPERATIONS = 10
LAST_BACKUPS = 30
NEWER_VERSIONS = 10


class InstanceListView(FilteredListView):
    """Every visible instance with its organisation, application, version and status; the fleet for maintainers."""

    template_name = "instances/instance_list.html"
    filterset_class = InstanceFilterSet
    context_object_name = "instances"

    def get_base_queryset(self):
        visible = Instance.objects.visible_to(self.request.user)
        annotated = instances_with_backup_health(instances_with_last_request(visible))
        return instances_with_last_drill(annotated).order_by("slug")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_request"] = requestable_organisations(self.request.user).exists()
        return context


class InstanceDetailView(LoginRequiredMixin, DetailView):
    """One instance: its details, the actions the user may request, its request history and audit trail."""

    template_name = "instances/instance_detail.html"
    context_object_name = "instance"

    def get_queryset(self):
        return Instance.objects.visible_to(self.request.user).select_related(*INSTANCE_RELATED)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        instance, user = self.object, self.request.user
        may_file = can_request_for(user, instance.organisation)
        context["can_request"] = instance.accepts_requests and may_file
        context["can_resync"] = is_maintainer(user) and instance.accepts_requests and instance.current_version_id
        context["requests"] = list(
            instance_requests(instance)
            .select_related("target_version", "backup", "requested_by")
            .order_by("-created_at", "-id")
        )
        context["events"] = list(instance_audit_events(instance, user))
        context["blocking_request"] = workflow.open_exclusive_request(instance)
        context["snapshots"] = list(instance.rollout_snapshots.all())
        context["operations"] = list(instance.operations.order_by("-queued_at", "-id")[:LAST_OPERATIONS])
        context["backups"] = list(instance.backups.order_by("-started_at", "-id")[:LAST_BACKUPS])
        # Functional admins and maintainers may download verified dumps, of a deleted instance too (its final one).
        context["can_download_backups"] = may_file
        context["backup_overdue"] = backup_overdue(instance)
        context["backup_max_age_hours"] = settings.PORTAL_BACKUP_MAX_AGE_HOURS
        context["images"] = sorted((instance.images or {}).items())
        digests = [ref["digest"] for ref in (instance.images or {}).values() if ref.get("digest")]
        context["overwrites"] = list(
            TagOverwrite.objects.open().filter(old_digest__in=digests).select_related("tag__repository__registry")
        ) if digests else []  # fmt: skip
        context["newer_versions"] = newer_versions(instance) if instance.accepts_requests else []
        return context


def newer_versions(instance: Instance) -> list[ApplicationVersion]:
    """The available versions newer than the one the instance runs, newest first (deployable or with blockers)."""
    versions = ApplicationVersion.objects.available().filter(application=instance.application_id)
    if instance.current_version_id:
        versions = versions.filter(sort_key__gt=instance.current_version.sort_key)
    return list(versions.order_by("-sort_key")[:NEWER_VERSIONS])


class RequestCreateView(DomainFormView):
    """Ask for a new instance. Viewers, who may not file requests for any organisation, get 403."""

    template_name = "instances/request_create.html"
    form_class = RequestCreateForm

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not requestable_organisations(request.user).exists():
            raise PermissionDenied(_("Only functional admins can request instances."))
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "user": self.request.user}

    def perform(self, form, ctx):
        return workflow.request_create(ctx, **form.domain_kwargs())


class InstanceRequestView(DomainFormView):
    """Base of the forms about one instance: 404 outside the user's organisations, 403 for viewers."""

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            self.instance = get_object_or_404(
                Instance.objects.visible_to(request.user).select_related(*INSTANCE_RELATED), slug=kwargs["slug"]
            )
            if not can_request_for(request.user, self.instance.organisation):
                raise PermissionDenied(
                    _("Only functional admins of %(org)s can file requests for it.")
                    % {"org": self.instance.organisation}
                )
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "instance": self.instance}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["instance"] = self.instance
        # The open upgrade or deletion that would make this request conflict, shown before the user types.
        context["blocking_request"] = workflow.open_exclusive_request(self.instance)
        return context


class RequestUpdateView(InstanceRequestView):
    template_name = "instances/request_update.html"
    form_class = RequestUpdateForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "user": self.request.user}

    def perform(self, form, ctx):
        return workflow.request_update(ctx, self.instance, **form.domain_kwargs())


class RequestDeleteView(InstanceRequestView):
    template_name = "instances/request_delete.html"
    form_class = RequestDeleteForm

    def perform(self, form, ctx):
        return workflow.request_delete(ctx, self.instance, **form.domain_kwargs())


class RequestBackupView(InstanceRequestView):
    template_name = "instances/request_backup.html"
    form_class = RequestBackupForm

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "needs_approval": settings.PORTAL_BACKUP_NEEDS_APPROVAL}

    def perform(self, form, ctx):
        return workflow.request_backup(ctx, self.instance, **form.domain_kwargs())
