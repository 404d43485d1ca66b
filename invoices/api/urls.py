from django.urls import path
from rest_framework.routers import SimpleRouter

from invoices.api.views import InterimInvoiceView, InvoiceViewSet

router = SimpleRouter(trailing_slash=False)
router.register("invoices", InvoiceViewSet, basename="invoice")

urlpatterns = [path("invoices/interim", InterimInvoiceView.as_view(), name="invoice-interim"), *router.urls]
