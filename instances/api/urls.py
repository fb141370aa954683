"""Routes of the instances endpoints; the project's URL map mounts them under the API root."""

from rest_framework.routers import SimpleRouter

from instances.api import engine, views

router = SimpleRouter()
router.register("applications", views.ApplicationViewSet, basename="application")
router.register("instances", views.InstanceViewSet, basename="instance")
router.register("requests", views.ChangeRequestViewSet, basename="changerequest")
router.register("operations", engine.OperationViewSet, basename="operation")

urlpatterns = router.urls
