from django.urls import path

from payments import exports, views

app_name = "payments"
urlpatterns = [
    path("", views.index, name="index"),
    path("export.csv", exports.payments_csv, name="export_csv"),
    path("top-up", views.topup, name="topup"),
    path("invoices/<int:invoice_id>/pay", views.pay_invoice, name="pay_invoice"),
    path("<int:pk>", views.detail, name="detail"),
    path("receipts/<int:pk>/pdf", views.receipt_pdf, name="receipt_pdf"),
    path("<int:pk>/return", views.provider_return, name="return"),
    path("<int:pk>/confirm", views.confirm, name="confirm"),
    path("methods/add", views.method_add, name="method_add"),
    path("methods/added", views.method_added, name="method_added"),
    path("methods/<int:pk>/default", views.method_default, name="method_default"),
    path("methods/<int:pk>/remove", views.method_remove, name="method_remove"),
    path("sandbox/checkout/<int:pk>", views.sandbox_checkout, name="sandbox_checkout"),
    path("sandbox/add-card", views.sandbox_add_card, name="sandbox_add_card"),
    path("webhooks/stripe", views.stripe_webhook, name="stripe_webhook"),
    path("webhooks/paypal", views.paypal_webhook, name="paypal_webhook"),
]
