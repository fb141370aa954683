"""Only the registry app's endpoints (webhooks, tag check), at the paths the portal serves them under, so that their
tests do not depend on every page of the portal importing. The portal's 404 page needs the portal's whole URL map:
a plain 404 stands in for it."""

from django.http import HttpResponseNotFound
from django.urls import include, path

from registry.urls import api_urlpatterns

urlpatterns = [path("", include("registry.urls")), path("api/v1/", include(api_urlpatterns))]


def handler404(request, exception):
    return HttpResponseNotFound("not found", content_type="text/plain")
