"""Portal-wide pages: dashboard and audit trail, and the filtered list view the other apps build on."""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.utils.translation import gettext as _
from django.views.generic import ListView, TemplateView

from instances.choices import InstanceStatus
from instances.models import ChangeRequest, Instance
from instances.queries import (
    CHANGE_REQUEST_RELATED,
    conflicts_of,
    instances_with_last_request,
    requests_with_conflicts,
)
from portal.filtersets import AuditEventFilterSet
from portal.models import AuditEvent
from portal.models.organisations import is_maintainer, requestable_organisations

# How many rows the dashboard previews before linking to the full list.
DASHBOARD_PREVIEW = 10
DASHBOARD_INSTANCES = 100


class FilteredListView(LoginRequiredMixin, ListView):
    """A paginated list narrowed by a django-filter FilterSet read from the query string.

    Invalid filter values are ignored (the filter form shows why) rather than emptying the list or failing.
    """

    filterset_class = None
    paginate_by = 50

    def get_base_queryset(self):
        raise NotImplementedError

    def get_filter_data(self):
        return self.request.GET

    def get_queryset(self):
        self.filterset = self.filterset_class(
            self.get_filter_data(), queryset=self.get_base_queryset(), request=self.request
        )
        return self.filterset.qs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["filterset"] = self.filterset
        context["filter_form"] = self.filterset.form
        return context


class HomeView(LoginRequiredMixin, TemplateView):
    """The dashboard: a maintainer's overview of the fleet and the queue, or a university's instances."""

    template_name = "portal/home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        context["can_request"] = requestable_organisations(user).exists()
        if is_maintainer(user):
            context.update(self.maintainer_context())
        else:
            context.update(self.member_context(user))
        return context

    def maintainer_context(self) -> dict:
        counts = dict(Instance.objects.order_by().values_list("status").annotate(n=Count("id")))
        queue = list(
            requests_with_conflicts(ChangeRequest.objects.awaiting_review()).order_by("created_at", "id")[
                :DASHBOARD_PREVIEW
            ]
        )
        for change_request in queue:
            change_request.conflicts = conflicts_of(change_request)
        return {
            "instance_counts": [(value, label, counts.get(value, 0)) for value, label in InstanceStatus.choices],
            "instance_total": sum(counts.values()),
            "awaiting_review_count": ChangeRequest.objects.awaiting_review().count(),
            "queue": queue,
        }

    def member_context(self, user) -> dict:
        instances = instances_with_last_request(Instance.objects.visible_to(user).active()).order_by(
            "organisation__name", "slug"
        )
        return {
            "instances": list(instances[:DASHBOARD_INSTANCES]),
            "open_requests": list(
                ChangeRequest.objects.visible_to(user)
                .open()
                .select_related(*CHANGE_REQUEST_RELATED)[:DASHBOARD_PREVIEW]
            ),
        }


class AuditListView(FilteredListView):
    """The audit trail, for maintainers only.

    Others get 403 rather than 404: the page is not an object of another organisation whose existence we would
    hide; every user knows the page exists, they are just not allowed to read it.
    """

    template_name = "portal/auditevent_list.html"
    filterset_class = AuditEventFilterSet
    context_object_name = "events"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not is_maintainer(request.user):
            raise PermissionDenied(_("Only maintainers can read the audit trail."))
        return super().dispatch(request, *args, **kwargs)

    def get_base_queryset(self):
        return (
            AuditEvent.objects.visible_to(self.request.user)
            .select_related("organisation")
            .order_by("-created_at", "-id")
        )
