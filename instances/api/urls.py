"""Routes of the instances endpoints; the project's URL map mounts them under the API root."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from instances.api import engine, instructions, views

router = SimpleRouter()
router.register("applications", views.ApplicationViewSet, basename="application")
router.register("instances", views.InstanceViewSet, basename="instance")
router.register("requests", views.ChangeRequestViewSet, basename="changerequest")
router.register("operations", engine.OperationViewSet, basename="operation")

urlpatterns = router.urls

# Not a router's: two plain views (a text body in, a text file out). The project mounts them under the API root.
instruction_urlpatterns = [
    path("instructions/import/", instructions.InstructionImportView.as_view(), name="instruction-import"),
    path("instructions/export/", instructions.InstructionExportView.as_view(), name="instruction-export"),
]
