"""What the request forms share: one domain call, its errors turned into form errors or 403."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.generic import FormView

from core.audit import AuditContext
from core.errors import DomainError, NotAllowed
from instances.choices import RequestStatus
from instances.models import ChangeRequest


class DomainFormView(LoginRequiredMixin, FormView):
    """A form whose valid submission makes exactly one call to the domain, which files a change request.

    Subclasses implement :meth:`perform`. ``ValidationError`` and ``Conflict``/``InvalidTransition`` come back
    as form errors (status 200 with the form); ``NotAllowed`` becomes 403.
    """

    def perform(self, form, ctx: AuditContext) -> ChangeRequest:
        raise NotImplementedError

    def form_valid(self, form):
        try:
            change_request = self.perform(form, AuditContext.from_request(self.request))
        except NotAllowed as exc:
            raise PermissionDenied(str(exc.message)) from exc
        except (ValidationError, DomainError) as exc:
            form.add_domain_error(exc)
            return self.form_invalid(form)
        messages.success(self.request, self.success_message(change_request))
        return redirect(change_request)

    def success_message(self, change_request: ChangeRequest) -> str:
        if change_request.status == RequestStatus.SUBMITTED:
            return _("Request #%(id)s is filed; a maintainer will review it.") % {"id": change_request.pk}
        return _("Request #%(id)s is filed and %(status)s.") % {
            "id": change_request.pk,
            "status": change_request.get_status_display().lower(),
        }
