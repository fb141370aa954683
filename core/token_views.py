"""The API tokens page: a user's own tokens (create, revoke) and, for maintainers, everyone's (revoke)."""

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django.views import View
from django.views.decorators.cache import never_cache

from core.audit import AuditContext
from core.errors import DomainError
from core.models import ApiToken
from core.models.organisations import is_maintainer
from core.tokens import MAX_EXPIRY_DAYS, can_revoke, create_token, revoke_token

# Everyone's tokens, for maintainers: the most recent ones (the admin site lists them all).
MAX_LISTED = 200


class TokenForm(forms.Form):
    name = forms.CharField(label=_l("Name"), max_length=100, help_text=_l("What will use it, e.g. “GitLab CI”."))
    read_only = forms.BooleanField(
        label=_l("Read only"), required=False, help_text=_l("It may read, never file, approve or cancel.")
    )
    expires_days = forms.IntegerField(
        label=_l("Expires after (days)"),
        required=False,
        min_value=1,
        max_value=MAX_EXPIRY_DAYS,
        initial=90,
        help_text=_l("Leave empty for a token that never expires."),
    )


@method_decorator(never_cache, name="dispatch")
class TokenListView(LoginRequiredMixin, View):
    """GET: the page; POST: create a token and show it once, on this answer only (never stored, never redirected
    to, so that it is neither in the session nor in the history)."""

    template_name = "core/token_list.html"

    def get(self, request):
        return self.render(request, TokenForm())

    def post(self, request):
        form = TokenForm(request.POST)
        new_token = None
        if form.is_valid():
            try:
                token, new_token = create_token(AuditContext.from_request(request), request.user, **form.cleaned_data)
            except ValidationError as exc:
                form.add_error(None, exc)
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                form = TokenForm()
                messages.success(request, _("Token “%(name)s” created.") % {"name": token.name})
        return self.render(request, form, new_token=new_token, status=400 if form.errors else 200)

    def render(self, request, form, new_token=None, status=200):
        context = {
            "form": form,
            "new_token": new_token,
            "tokens": list(ApiToken.objects.filter(user=request.user).select_related("revoked_by")),
            "everyone": None,
        }
        if is_maintainer(request.user):
            everyone = ApiToken.objects.exclude(user=request.user).select_related("user", "revoked_by")
            context["everyone"] = list(everyone[:MAX_LISTED])
        return render(request, self.template_name, context, status=status)


class TokenRevokeView(LoginRequiredMixin, View):
    """POST: revoke a token (its user's or, for maintainers, anyone's); another user's token is 404 to others."""

    http_method_names = ["post"]

    def post(self, request, pk):
        token = ApiToken.objects.filter(pk=pk).select_related("user").first()
        if token is None or not can_revoke(request.user, token):
            raise Http404
        if revoke_token(AuditContext.from_request(request), token, reason=request.POST.get("reason", "")[:500]):
            messages.success(request, _("Token “%(name)s” revoked.") % {"name": token.name})
        else:
            messages.info(request, _("Token “%(name)s” was already revoked.") % {"name": token.name})
        return redirect("token_list")
