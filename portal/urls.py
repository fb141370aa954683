"""URL map of the portal."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from portal import views

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("audit/", views.AuditListView.as_view(), name="audit_list"),
    path("", include("instances.urls")),
    path("api/", include("portal.api.urls")),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    urlpatterns += [path("django-rq/", include("django_rq.urls"))]
