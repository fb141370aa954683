"""URL map of the portal: every app's pages, and one API router whose root lists every app's endpoints."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from core.api.urls import PortalRouter
from core.api.urls import router as core_api
from core.views import AuditListView, JobRunListView
from instances.api.urls import router as instances_api
from instances.views.dashboard import HomeView

api = PortalRouter()
api.registry.extend(core_api.registry + instances_api.registry)

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("audit/", AuditListView.as_view(), name="audit_list"),
    path("jobs/", JobRunListView.as_view(), name="jobrun_list"),
    path("", include("instances.urls")),
    path("", include("registry.urls")),
    path("api/", include(api.urls)),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    urlpatterns += [path("django-rq/", include("django_rq.urls"))]
