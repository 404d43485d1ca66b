from django.urls import path
from rest_framework.routers import SimpleRouter

from credits.api import views

router = SimpleRouter(trailing_slash=False)
router.register("credits/ledger", views.LedgerViewSet, basename="credit-ledger")
router.register("credits/events", views.EventViewSet, basename="credit-event")
router.register("credits/topups", views.TopUpViewSet, basename="credit-topup")
router.register("credits/promotional-grants", views.PromoGrantViewSet, basename="credit-promo-grant")

urlpatterns = [
    path("credits/balance", views.BalanceView.as_view(), name="credit-balance"),
    path("credits/adjustments", views.AdjustmentView.as_view(), name="credit-adjustments"),
    path("credits/auto-topup", views.AutoTopUpView.as_view(), name="credit-auto-topup"),
    path("credits/resume", views.ResumeView.as_view(), name="credit-resume"),
    path("admission", views.AdmissionView.as_view(), name="admission"),
    *router.urls,
]
