from django.urls import path
from rest_framework.routers import SimpleRouter

from webhooks.api import views

router = SimpleRouter(trailing_slash=False)
router.register("webhook-endpoints", views.EndpointViewSet, basename="webhook-endpoint")
router.register("webhook-deliveries", views.DeliveryViewSet, basename="webhook-delivery")

urlpatterns = [
    path("webhook-event-types", views.EventTypeView.as_view(), name="webhook-event-types"),
    *router.urls,
]
