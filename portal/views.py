"""Portal-wide pages: dashboard, audit trail, health."""

from django.db import connection
from django.http import JsonResponse
from django.views.generic import TemplateView


class HomeView(TemplateView):
    template_name = "portal/home.html"


class AuditListView(TemplateView):
    template_name = "portal/auditevent_list.html"


def health(request):
    """Liveness and database reachability for the load balancer; it reveals nothing else."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
