"""Only the registry app's endpoints (webhooks, tag check), at the paths the portal serves them under, so that their
tests do not depend on every page of the portal importing. The portal's 404 page needs the portal's whole URL map:
a plain 404 stands in for it."""

from django.http import HttpResponseNotFound
from django.urls import include, path

urlpatterns = [path("", include("registry.urls"))]


def handler404(request, exception):
    return HttpResponseNotFound("not found", content_type="text/plain")
