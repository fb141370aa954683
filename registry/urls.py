"""URLs of the registry app that need no page of the instances app: push webhooks, and the CI tag check (mounted
under the API by the project's URL map)."""

from django.urls import path

from registry.api import TagCheckView
from registry.webhooks import RegistryWebhookView

app_name = "registry_api"

urlpatterns = [
    path("registry/hooks/<int:pk>/", RegistryWebhookView.as_view(), name="webhook"),
]

api_urlpatterns = [
    path("registry/check/", TagCheckView.as_view(), name="registry-check"),
]
