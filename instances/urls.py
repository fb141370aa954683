from django.urls import path
from django.views.generic import TemplateView

app_name = "instances"

_todo = TemplateView.as_view(template_name="base.html")

urlpatterns = [
    path("instances/", _todo, name="instance_list"),
    path("instances/new/", _todo, name="request_create"),
    path("instances/<slug:slug>/", _todo, name="instance_detail"),
    path("instances/<slug:slug>/upgrade/", _todo, name="request_update"),
    path("instances/<slug:slug>/delete/", _todo, name="request_delete"),
    path("instances/<slug:slug>/backup/", _todo, name="request_backup"),
    path("requests/", _todo, name="request_list"),
    path("requests/<int:pk>/", _todo, name="request_detail"),
    path("requests/<int:pk>/approve/", _todo, name="request_approve"),
    path("requests/<int:pk>/reject/", _todo, name="request_reject"),
    path("requests/<int:pk>/cancel/", _todo, name="request_cancel"),
]
