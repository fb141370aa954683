"""The project's URLs with the instruction endpoints mounted under /api/v1/ (for the tests, whatever the project's
URL map does with them)."""

from django.urls import include, path

from instances.api.urls import instruction_urlpatterns
from portal.urls import urlpatterns as project_urlpatterns

urlpatterns = [path("api/v1/", include(instruction_urlpatterns)), *project_urlpatterns]
