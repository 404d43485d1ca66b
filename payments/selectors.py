"""Reads for the portal, the API and the admin."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Organization
from payments.models import DunningCase, DunningStatus, Payment


def invoices_of(organization: Organization) -> QuerySet:
    from invoices.models import Invoice

    return Invoice.objects.filter(organization=organization)


def open_invoices(organization: Organization) -> list:
    """Open invoices with what is still owed on each (`open_amount`), oldest due first."""
    from payments.services import invoice_open_amount

    invoices = list(invoices_of(organization).filter(status="open").order_by("due_at", "id")[:50])
    for invoice in invoices:
        invoice.open_amount = invoice_open_amount(invoice)
    return [i for i in invoices if i.open_amount > 0]


def payment_history(organization: Organization) -> QuerySet:
    return (Payment.objects.filter(organization=organization)
            .select_related("invoice", "payment_method").order_by("-created_at", "-id"))


def active_dunning(organization: Organization) -> list[DunningCase]:
    return list(DunningCase.objects.filter(organization=organization, status=DunningStatus.ACTIVE)
                .select_related("invoice"))
