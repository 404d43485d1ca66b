from django.urls import path
from rest_framework.routers import SimpleRouter

from accounts.api import views

router = SimpleRouter(trailing_slash=False)
router.register("organizations", views.OrganizationViewSet, basename="organization")
router.register(r"organizations/(?P<organization_pk>\d+)/members", views.MemberViewSet, basename="member")
router.register("api-keys", views.ApiKeyViewSet, basename="api-key")

urlpatterns = [
    path("organization", views.OwnOrganizationView.as_view(), name="own-organization"),
    *router.urls,
]
