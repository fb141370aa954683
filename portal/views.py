"""Portal-wide pages: dashboard and audit trail."""

from django.views.generic import TemplateView


class HomeView(TemplateView):
    template_name = "portal/home.html"


class AuditListView(TemplateView):
    template_name = "portal/auditevent_list.html"
