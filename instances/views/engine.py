"""Pages of the deployment engine: one operation, the live rollout of an instance, and the clusters."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django.views import View
from django.views.generic import DetailView, ListView

from core.audit import AuditContext, record
from core.views import MaintainerRequiredMixin
from instances.engine.dispatcher import start_resync
from instances.engine.health import check_cluster
from instances.models import Cluster, Instance, Operation


class OperationDetailView(LoginRequiredMixin, DetailView):
    """One operation: its status and timing, its log, and the manifests it rendered with their diff."""

    template_name = "instances/operation_detail.html"
    context_object_name = "operation"

    def get_queryset(self):
        visible = Instance.objects.visible_to(self.request.user)
        return Operation.objects.filter(instance__in=visible).select_related(
            "instance", "request", "target_version", "backup"
        )


class InstanceRolloutView(LoginRequiredMixin, DetailView):
    """The body of an instance's rollout card alone, fetched every few seconds by static/portal/live.js."""

    template_name = "instances/includes/rollout_body.html"
    context_object_name = "instance"

    def get_queryset(self):
        return Instance.objects.visible_to(self.request.user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["snapshots"] = list(self.object.rollout_snapshots.all())
        return context


class ClusterListView(MaintainerRequiredMixin, ListView):
    """The clusters and whether the portal reaches them. Their kubeconfig is never shown."""

    denied_message = _l("Only maintainers can see the clusters.")

    template_name = "instances/cluster_list.html"
    context_object_name = "clusters"

    def get_queryset(self):
        # Never shown here, so neither read nor decrypted.
        return Cluster.objects.defer("kubeconfig").annotate(instance_count=Count("instances")).order_by("name")


class ClusterCheckView(MaintainerRequiredMixin, View):
    """POST: ask one cluster for its version now and record whether it answered."""

    denied_message = _l("Only maintainers can see the clusters.")

    http_method_names = ["post"]

    def post(self, request, pk):
        cluster = get_object_or_404(Cluster, pk=pk)
        ok, _message = check_cluster(cluster)
        if ok:
            messages.success(request, _("Cluster %(name)s is reachable.") % {"name": cluster.name})
        else:
            messages.error(request, _("Cluster %(name)s is not reachable.") % {"name": cluster.name})
        return redirect("instances:cluster_list")


class InstanceResyncView(MaintainerRequiredMixin, View):
    """POST: apply every object of an instance again and prune (a maintainer's answer to drift)."""

    http_method_names = ["post"]
    denied_message = _l("Only maintainers can resync an instance.")

    def post(self, request, slug):
        instance = get_object_or_404(Instance, slug=slug)
        operation = start_resync(instance)
        if operation is None:
            text = _("%(slug)s cannot be resynced now: it is not deployed yet, it is deleted, or it is busy.")
            messages.error(request, text % {"slug": slug})
        else:
            record(
                AuditContext.from_request(request),
                "instance.resync_requested",
                instance,
                organisation_id=instance.organisation_id,
                after={"operation": operation.pk},
            )
            messages.success(request, _("A full resync of %(slug)s is queued.") % {"slug": slug})
        return redirect(instance)
