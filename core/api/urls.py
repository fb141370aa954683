"""Routes of the core endpoints, and the router class the project mounts every app's routes with."""

from rest_framework.routers import DefaultRouter, SimpleRouter

from core.api import views


class PortalRouter(DefaultRouter):
    """DRF's default router with the portal's documented root view."""

    APIRootView = views.PortalApiRootView


router = SimpleRouter()
router.register("organisations", views.OrganisationViewSet, basename="organisation")
router.register("memberships", views.MembershipViewSet, basename="membership")
router.register("audit", views.AuditEventViewSet, basename="auditevent")
router.register("tokens", views.ApiTokenViewSet, basename="apitoken")
