"""URLs of the registry app that need no page of the instances app: push webhooks and the CI tag check."""

from django.urls import path

from registry.api import TagCheckView
from registry.webhooks import RegistryWebhookView

app_name = "registry_api"

urlpatterns = [
    path("registry/hooks/<int:pk>/", RegistryWebhookView.as_view(), name="webhook"),
    path("api/registry/check/", TagCheckView.as_view(), name="tag_check"),
]
