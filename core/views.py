"""The audit trail page, and the filtered list view the other apps build on."""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.utils.translation import gettext_lazy as _
from django.views.generic import ListView

from core.filtersets import AuditEventFilterSet
from core.models import AuditEvent, JobRun
from core.models.organisations import is_maintainer


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


class MaintainerRequiredMixin(LoginRequiredMixin):
    """Pages for maintainers only. Others get 403 rather than 404: the page is not an object of another
    organisation whose existence we would hide; every user knows the page exists, they may not read it."""

    denied_message = _("Only maintainers can see this page.")

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not is_maintainer(request.user):
            raise PermissionDenied(self.denied_message)
        return super().dispatch(request, *args, **kwargs)


class AuditListView(MaintainerRequiredMixin, FilteredListView):
    """The audit trail, for maintainers only."""

    template_name = "core/auditevent_list.html"
    filterset_class = AuditEventFilterSet
    context_object_name = "events"
    denied_message = _("Only maintainers can read the audit trail.")

    def get_base_queryset(self):
        return (
            AuditEvent.objects.visible_to(self.request.user)
            .select_related("organisation")
            .order_by("-created_at", "-id")
        )


class JobRunListView(MaintainerRequiredMixin, ListView):
    """The periodic jobs: the last run of each (status, duration, result), then every recent run."""

    template_name = "core/jobrun_list.html"
    context_object_name = "runs"
    paginate_by = 50

    def get_queryset(self):
        runs = JobRun.objects.order_by("-started_at", "-id")
        name = self.request.GET.get("name", "")
        return runs.filter(name=name) if name else runs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        newest = JobRun.objects.filter(name=OuterRef("name")).order_by("-started_at", "-id").values("pk")[:1]
        context["latest"] = list(JobRun.objects.filter(pk__in=Subquery(newest)).order_by("name"))
        context["name"] = self.request.GET.get("name", "")
        return context
