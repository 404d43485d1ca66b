"""/api/v1/: each app contributes its routes from `<app>/api/urls.py`."""

from django.urls import include, path

urlpatterns = [
    path("", include("accounts.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("pricing.api.urls")),
    path("", include("usage.api.urls")),
    path("", include("credits.api.urls")),
    path("", include("invoices.api.urls")),
    path("", include("payments.api.urls")),
    path("", include("budgets.api.urls")),
    path("", include("finance.api.urls")),
]
