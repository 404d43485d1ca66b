"""The dashboard card: this month's interim invoice, computed live (never stored), as the
one month-to-date figure (`invoices.month_to_date`) every page shows."""

from __future__ import annotations

import logging

from accounts.scopes import ROLE_SCOPES
from invoices.models import Invoice, InvoiceStatus
from usage.selectors import month_to_date_for_request

log = logging.getLogger(__name__)


def interim_invoice_card(request, organization) -> dict | None:
    membership = getattr(request, "membership", None)
    if membership is None or "billing:read" not in ROLE_SCOPES[membership.role]:
        return None
    mtd = month_to_date_for_request(request, organization)
    unpaid = Invoice.objects.filter(
        organization=organization, status__in=(InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)
    ).order_by("due_at")
    return {
        "template": "invoices/cards/interim.html",
        "mtd": mtd,
        "bill": mtd.bill,
        "currency": organization.currency,
        "unpaid": list(unpaid[:3]),
    }
