"""Restore pages: the form that asks to restore a verified backup, and the maintainers' restore-drill button."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django.utils.translation import ngettext
from django.views import View

from core.audit import AuditContext, record
from core.views import MaintainerRequiredMixin
from instances import workflow
from instances.engine.drills import queue_drill, queue_drills
from instances.forms import RequestRestoreForm
from instances.models import Instance
from instances.views.instances import InstanceRequestView


class RequestRestoreView(InstanceRequestView):
    """Ask to restore one of the instance's verified backups (functional admins of its organisation, maintainers)."""

    template_name = "instances/request_restore.html"
    form_class = RequestRestoreForm

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["has_backups"] = workflow.restorable_backups(self.instance).exists()
        return context

    def perform(self, form, ctx):
        return workflow.request_restore(ctx, self.instance, **form.domain_kwargs())


class DrillView(MaintainerRequiredMixin, View):
    """POST: queue restore drills, of one instance (``slug``) or of every live instance with a verified backup.

    A drill restores the latest verified backup into a scratch database on the cluster; the instance itself is
    not touched. An instance that is busy is skipped (the periodic drill takes it next time).
    """

    http_method_names = ["post"]
    denied_message = _l("Only maintainers can start restore drills.")

    def post(self, request, slug=None):
        ctx = AuditContext.from_request(request)
        if slug is not None:
            instance = get_object_or_404(Instance, slug=slug)
            operation = queue_drill(instance)
            if operation is None:
                text = _("No drill of %(slug)s now: it has no verified backup, is not running, or is busy.")
                messages.error(request, text % {"slug": slug})
            else:
                _audit_queued(ctx, operation)
                messages.success(request, _("A restore drill of %(slug)s is queued.") % {"slug": slug})
            return redirect(instance)
        queued = queue_drills()
        for operation in queued:
            _audit_queued(ctx, operation)
        text = ngettext("%(count)d restore drill is queued.", "%(count)d restore drills are queued.", len(queued))
        messages.success(request, text % {"count": len(queued)})
        return redirect("instances:instance_list")


def _audit_queued(ctx: AuditContext, operation) -> None:
    instance = operation.instance
    record(ctx, "instance.drill_requested", instance, organisation_id=instance.organisation_id,
           after={"operation": operation.pk})  # fmt: skip
