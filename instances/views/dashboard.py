"""The dashboard: a maintainer's overview of the fleet and the queue, or a university's instances."""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models import Count
from django.views.generic import TemplateView

from core.models.organisations import Organisation, is_maintainer, requestable_organisations
from instances.choices import InstanceStatus
from instances.engine.alerts import open_alerts
from instances.models import ChangeRequest, Instance
from instances.queries import (
    CHANGE_REQUEST_RELATED,
    conflicts_of,
    instances_with_last_request,
    requests_with_conflicts,
)

# How many rows the dashboard previews before linking to the full list.
DASHBOARD_PREVIEW = 10
DASHBOARD_INSTANCES = 100


class HomeView(LoginRequiredMixin, TemplateView):
    """The dashboard: a maintainer's overview of the fleet and the queue, or a university's instances."""

    template_name = "instances/dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        context["can_request"] = requestable_organisations(user).exists()
        if is_maintainer(user):
            context.update(self.maintainer_context())
            alerts = open_alerts()
        else:
            context.update(self.member_context(user))
            alerts = open_alerts(Organisation.objects.visible_to(user))
        # Missed backups of the user's organisations (a maintainer's: all), one query.
        context["backup_alerts"] = list(alerts[:DASHBOARD_PREVIEW])
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
