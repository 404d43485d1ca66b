from rest_framework.routers import SimpleRouter

from payments.api import views

router = SimpleRouter(trailing_slash=False)
router.register("payments", views.PaymentViewSet, basename="payment")
router.register("refunds", views.RefundViewSet, basename="refund")

urlpatterns = router.urls
