"""Change request pages: the list (the approval queue for maintainers), one request, and its review actions."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.generic import DetailView

from core.audit import AuditContext
from core.errors import DomainError, NotAllowed
from core.models import AuditEvent
from core.models.organisations import is_maintainer
from core.views import FilteredListView
from instances import workflow
from instances.choices import RequestKind, RequestStatus
from instances.engine import rendering
from instances.filtersets import ChangeRequestFilterSet
from instances.forms import ApproveForm, CancelForm, RejectForm
from instances.models import ChangeRequest
from instances.queries import conflicts_of, requests_with_conflicts


def error_text(exc: Exception) -> str:
    if isinstance(exc, DomainError):
        return str(exc.message)
    return " ".join(exc.messages)


class RequestListView(FilteredListView):
    """Requests of the user's organisations; for maintainers, the approval queue (submitted requests) by default."""

    template_name = "instances/changerequest_list.html"
    filterset_class = ChangeRequestFilterSet
    context_object_name = "change_requests"

    def get_filter_data(self):
        data = self.request.GET.copy()
        # Maintainers land on what waits for them; an explicit empty status (?status=) shows everything.
        if "status" not in data and is_maintainer(self.request.user):
            data["status"] = RequestStatus.SUBMITTED
        return data

    def get_base_queryset(self):
        return requests_with_conflicts(ChangeRequest.objects.visible_to(self.request.user)).order_by(
            "-created_at", "-id"
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        for change_request in context["change_requests"]:
            change_request.conflicts = conflicts_of(change_request)
        context["is_queue"] = self.filterset.form.data.get("status") == RequestStatus.SUBMITTED
        return context


class RequestDetailView(LoginRequiredMixin, DetailView):
    """One request: every field, its timeline from the audit trail, and the actions the user may take."""

    template_name = "instances/changerequest_detail.html"
    context_object_name = "change_request"

    def get_queryset(self):
        return requests_with_conflicts(ChangeRequest.objects.visible_to(self.request.user))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        change_request, user = self.object, self.request.user
        can_review = change_request.status == RequestStatus.SUBMITTED and change_request.can_review(user)
        context.update(
            {
                "conflicts": conflicts_of(change_request),
                "timeline": AuditEvent.objects.visible_to(user)
                .filter(target_type=ChangeRequest._meta.label_lower, target_id=str(change_request.pk))
                .order_by("created_at", "id"),
                "can_review": can_review,
                "is_own_request": change_request.requested_by_id == user.pk,
                "can_cancel": change_request.is_cancellable and change_request.can_cancel(user),
            }
        )
        if (
            is_maintainer(user)
            and change_request.status in RequestStatus.open()
            and change_request.kind in (RequestKind.CREATE, RequestKind.UPDATE)
        ):
            context["preview"] = rendering.preview(change_request)
        if can_review:
            context.setdefault("approve_form", ApproveForm())
            context.setdefault("reject_form", RejectForm())
        if context["can_cancel"]:
            context.setdefault("cancel_form", CancelForm())
        return context


class RequestActionView(RequestDetailView):
    """A POST-only action on a request (GET answers 405).

    A form error re-renders the request page with the error (status 200). A refusal by the state machine
    (the request moved on meanwhile) is reported as a message on the request page; NotAllowed is 403.
    """

    http_method_names = ["post"]
    form_class = None
    form_context_name = ""

    def check_permission(self, change_request, user) -> None:
        raise NotImplementedError

    def perform(self, change_request, form, ctx: AuditContext) -> None:
        raise NotImplementedError

    def success_message(self, change_request) -> str:
        raise NotImplementedError

    def post(self, request, *args, **kwargs):
        self.object = change_request = self.get_object()
        self.check_permission(change_request, request.user)
        form = self.form_class(request.POST)
        if form.is_valid():
            try:
                self.perform(change_request, form, AuditContext.from_request(request))
            except NotAllowed as exc:
                raise PermissionDenied(str(exc.message)) from exc
            except (ValidationError, DomainError) as exc:
                field = getattr(exc, "field", None)
                if getattr(form, "domain_field_map", {}).get(field, field) in form.fields:
                    form.add_domain_error(exc)
                else:
                    messages.error(request, error_text(exc))
                    return redirect(change_request)
            else:
                messages.success(request, self.success_message(change_request))
                return redirect(change_request)
        context = self.get_context_data(object=change_request, **{self.form_context_name: form})
        return self.render_to_response(context)


class RequestApproveView(RequestActionView):
    form_class = ApproveForm
    form_context_name = "approve_form"

    def check_permission(self, change_request, user):
        if not is_maintainer(user):
            raise PermissionDenied(_("Only maintainers can approve or reject requests."))
        if not change_request.can_review(user):
            raise PermissionDenied(_("You cannot review your own request; another maintainer must."))

    def perform(self, change_request, form, ctx):
        workflow.approve(ctx, change_request, reason=form.cleaned_data["comment"].strip())

    def success_message(self, change_request):
        return _("Request #%(id)s is approved.") % {"id": change_request.pk}


class RequestRejectView(RequestApproveView):
    form_class = RejectForm
    form_context_name = "reject_form"

    def perform(self, change_request, form, ctx):
        workflow.reject(ctx, change_request, reason=form.cleaned_data["reason"])

    def success_message(self, change_request):
        return _("Request #%(id)s is rejected.") % {"id": change_request.pk}


class RequestCancelView(RequestActionView):
    form_class = CancelForm
    form_context_name = "cancel_form"

    def check_permission(self, change_request, user):
        if not change_request.can_cancel(user):
            raise PermissionDenied(_("Only the requester or a maintainer can cancel this request."))

    def perform(self, change_request, form, ctx):
        change_request.cancel(ctx, reason=form.cleaned_data["reason"])

    def success_message(self, change_request):
        return _("Request #%(id)s is cancelled.") % {"id": change_request.pk}
