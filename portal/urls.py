"""URL map of the portal: every app's pages, and the API v1 whose root lists every app's endpoints."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from core.api.urls import PortalRouter
from core.api.urls import router as core_api
from core.views import AuditListView, JobRunListView
from instances.api.urls import instruction_urlpatterns
from instances.api.urls import router as instances_api
from instances.views.dashboard import HomeView
from registry.urls import api_urlpatterns as registry_api

api = PortalRouter()
api.registry.extend(core_api.registry + instances_api.registry)

api_v1 = [
    path("", include(api.urls)),
    *registry_api,
    *instruction_urlpatterns,
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view loads its start-up script from a URL, not inline: the Content-Security-Policy allows no inline.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("audit/", AuditListView.as_view(), name="audit_list"),
    path("jobs/", JobRunListView.as_view(), name="jobrun_list"),
    path("", include("instances.urls")),
    path("", include("registry.urls")),
    path("", include("core.urls")),
    path("api/v1/", include(api_v1)),
    # The unversioned root points to the current version; nothing outside depends on the old /api/ paths.
    re_path(r"^api/?$", RedirectView.as_view(pattern_name="api-root", permanent=False)),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    urlpatterns += [path("django-rq/", include("django_rq.urls"))]
