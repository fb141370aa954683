"""The instruction file pages: import (functional admins and maintainers), export, and the git sources (maintainers).

Views stay thin: a form, one call to :mod:`instances.instructions`, and the per-line report shown as a table.
"""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models.fields.json import KT
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django.views import View
from django.views.generic import CreateView, DetailView, FormView, ListView, UpdateView

from core.audit import AuditContext, record
from core.models.organisations import requestable_organisations
from core.views import MaintainerRequiredMixin
from instances.forms_instructions import InstructionImportForm, InstructionSourceForm
from instances.instructions.export import export_text
from instances.instructions.importer import default_application, import_instructions
from instances.instructions.jobs import enqueue_poll
from instances.instructions.parser import FORMAT, InstructionFileError
from instances.instructions.report import ImportReport
from instances.models import InstructionSource

SOURCES_DENIED = _l("Only maintainers can see the instruction sources.")


class InstructionImportView(LoginRequiredMixin, FormView):
    """The format, the export of the open scheduled requests, and — for those who may file requests — the import.

    Every member may read the page (viewers export what they see); importing is for functional admins and
    maintainers: anyone else's POST is 403. A dry run (the default) shows the report and offers to import for real.
    """

    template_name = "instructions/import.html"
    form_class = InstructionImportForm

    def can_import(self) -> bool:
        return requestable_organisations(self.request.user).exists()

    def post(self, request, *args, **kwargs):
        if not self.can_import():
            raise PermissionDenied(_("Only functional admins and maintainers can import instructions."))
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_import"] = self.can_import() if self.request.method == "GET" else True
        context["format"] = FORMAT
        application = default_application()
        context["default_application"] = application
        return context

    def form_valid(self, form):
        data = form.cleaned_data
        try:
            report = import_instructions(
                AuditContext.from_request(self.request),
                data["content"],
                dry_run=data["dry_run"],
                application=data.get("application"),
            )
        except InstructionFileError as refused:
            form.add_error(None, refused.message.render())
            return self.form_invalid(form)
        if not report.dry_run:
            messages.success(self.request, report.summary().render())
        # After a dry run the same content is offered for a real import, without uploading the file again.
        return self.render_to_response(
            self.get_context_data(form=form, report=report, content=data["content"], application=data["application"])
        )


class InstructionExportView(LoginRequiredMixin, View):
    """GET: the open scheduled requests the user may see, as an instruction file to download."""

    def get(self, request):
        response = HttpResponse(export_text(request.user), content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="instructions.txt"'
        return response


class InstructionSourceListView(MaintainerRequiredMixin, ListView):
    """The git sources with their last poll: one query, whatever their number (the reports' counts come from
    their JSON, not from the reports themselves)."""

    denied_message = SOURCES_DENIED
    template_name = "instructions/source_list.html"
    context_object_name = "sources"

    def get_queryset(self):
        return (
            InstructionSource.objects.defer("secret", "last_report", "last_error_message")
            .annotate(
                report_created=KT("last_report__created"),
                report_unchanged=KT("last_report__unchanged"),
                report_cancelled=KT("last_report__cancelled"),
                report_errors=KT("last_report__errors"),
            )
            .order_by("name")
        )


class InstructionSourceDetailView(MaintainerRequiredMixin, DetailView):
    """One source: its settings (never its secret), last commit, last error, and the last import's report."""

    denied_message = SOURCES_DENIED
    template_name = "instructions/source_detail.html"
    context_object_name = "source"
    queryset = InstructionSource.objects.defer("secret").select_related("application")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["report"] = ImportReport.from_json(self.object.last_report)
        return context


class _SourceFormMixin(MaintainerRequiredMixin):
    denied_message = SOURCES_DENIED
    model = InstructionSource
    form_class = InstructionSourceForm
    template_name = "instructions/source_form.html"
    context_object_name = "source"

    def form_valid(self, form):
        # From the database: the form has already copied its data onto self.object.
        stored = InstructionSource.objects.filter(pk=form.instance.pk).first() if form.instance.pk else None
        before = stored.snapshot() if stored else None
        self.object = form.save()
        after = self.object.snapshot()
        if form.secret_changed:
            after["secret"] = "changed"  # that it changed, never what it is
        action = "instruction_source.updated" if before else "instruction_source.created"
        record(AuditContext.from_request(self.request), action, self.object, before=before, after=after)
        messages.success(self.request, _("Source %(name)s is saved.") % {"name": self.object.name})
        return redirect(self.object)


class InstructionSourceCreateView(_SourceFormMixin, CreateView):
    pass


class InstructionSourceUpdateView(_SourceFormMixin, UpdateView):
    pass


class InstructionSourceImportView(MaintainerRequiredMixin, View):
    """POST: import the source's file now, in the background, even if its commit did not change."""

    denied_message = SOURCES_DENIED
    http_method_names = ["post"]

    def post(self, request, pk):
        source = get_object_or_404(InstructionSource.objects.only("pk", "name"), pk=pk)
        enqueue_poll(source)
        messages.success(request, _("An import of %(name)s is queued; reload the page in a moment.") % {"name": source})
        return redirect("instances:instruction_source_detail", pk=source.pk)
