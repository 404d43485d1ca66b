"""The dashboard card: this month's interim invoice, computed live (never stored)."""

from __future__ import annotations

import logging

from accounts.scopes import ROLE_SCOPES
from invoices import engine
from invoices.models import Invoice, InvoiceStatus

log = logging.getLogger(__name__)


def interim_invoice_card(request, organization) -> dict | None:
    membership = getattr(request, "membership", None)
    if membership is None or "billing:read" not in ROLE_SCOPES[membership.role]:
        return None
    ctx, bill = engine.interim_bill(organization=organization)
    unpaid = Invoice.objects.filter(
        organization=organization, status__in=(InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)
    ).order_by("due_at")
    return {
        "template": "invoices/cards/interim.html",
        "ctx": ctx,
        "bill": bill,
        "currency": organization.currency,
        "unpaid": list(unpaid[:3]),
    }
