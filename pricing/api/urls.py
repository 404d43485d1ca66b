from django.urls import path
from rest_framework.routers import SimpleRouter

from pricing.api import views

router = SimpleRouter(trailing_slash=False)
router.register("products", views.ProductViewSet, basename="product")
router.register("prices", views.PriceViewSet, basename="price")
router.register("contracts", views.ContractViewSet, basename="contract")

urlpatterns = [
    path("quotes", views.QuoteView.as_view(), name="quote"),
    *router.urls,
]
