"""The API's URL map: one router, so the root lists every endpoint of every app."""

from rest_framework.routers import DefaultRouter

from instances.api.urls import router as instances_router
from portal.api import views


class PortalRouter(DefaultRouter):
    """DRF's default router with the portal's documented root view."""

    APIRootView = views.PortalApiRootView


router = PortalRouter()
router.register("organisations", views.OrganisationViewSet, basename="organisation")
router.register("memberships", views.MembershipViewSet, basename="membership")
router.registry.extend(instances_router.registry)
router.register("audit", views.AuditEventViewSet, basename="auditevent")

urlpatterns = router.urls
