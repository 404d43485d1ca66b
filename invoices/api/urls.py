from django.urls import path
from rest_framework.routers import SimpleRouter

from invoices.api.views import CreditNoteViewSet, InterimInvoiceView, InvoiceViewSet

router = SimpleRouter(trailing_slash=False)
router.register("invoices", InvoiceViewSet, basename="invoice")
router.register("credit-notes", CreditNoteViewSet, basename="credit-note")

urlpatterns = [path("invoices/interim", InterimInvoiceView.as_view(), name="invoice-interim"), *router.urls]
