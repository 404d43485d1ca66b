"""Reads for the portal, the API and the admin."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import OuterRef, Q, QuerySet, Subquery

from accounts.models import Organization
from payments.models import DunningCase, DunningStatus, Flow, Payment, PaymentStatus

if TYPE_CHECKING:
    from invoices.models import Invoice


def invoices_of(organization: Organization) -> QuerySet:
    from invoices.models import Invoice

    return Invoice.objects.filter(organization=organization)


def open_invoices(organization: Organization) -> list[Invoice]:
    """Open invoices that still ask for money, oldest due first, each with what a new
    checkout may pay (`open_amount`: what is owed less money already in flight, such as
    an automatic charge or a delayed bank payment) and those payments (`under_way`).
    An unfinished checkout does not hide an invoice: paying again supersedes it."""
    from invoices.selectors import with_still_due

    invoices = with_still_due(invoices_of(organization).filter(status="open")).order_by("due_at", "id")[:50]
    return [_payable(invoice) for invoice in invoices if invoice.still_due > 0]  # type: ignore[attr-defined]


def payable_invoice(organization: Organization, invoice_id: int) -> Invoice | None:
    """One invoice as `open_invoices` gives it, or None when it asks for nothing."""
    from invoices.selectors import with_still_due

    invoice = with_still_due(invoices_of(organization).filter(pk=invoice_id, status="open")).first()
    if invoice is None or invoice.still_due <= 0:  # type: ignore[attr-defined]  # annotated by with_still_due
        return None
    return _payable(invoice)


def _payable(invoice: Any) -> Any:
    """`invoice` (annotated `still_due`) with `open_amount` and `under_way` set."""
    from payments.services import invoice_open_amount

    in_flight = [PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION, PaymentStatus.PROCESSING]
    invoice.open_amount = max(invoice_open_amount(invoice), Decimal("0"))
    invoice.under_way = list(Payment.objects.filter(invoice=invoice, status__in=in_flight)
                             .exclude(flow=Flow.CHECKOUT, status__in=[PaymentStatus.PENDING,
                                                                     PaymentStatus.REQUIRES_ACTION]))
    return invoice


def payment_history(organization: Organization) -> QuerySet:
    """Payments, newest first, each with `topup_label` (manual, API or automatic top-up)
    when credits asked for it. A checkout that ended without money (canceled: replaced by
    a newer one, or expired unpaid) is left out: it paid nothing and asks for nothing."""
    from credits.models import TopUp

    topups = TopUp.objects.filter(pk=OuterRef("credits_topup_id"))
    return (Payment.objects.filter(organization=organization)
            .exclude(Q(flow=Flow.CHECKOUT) & Q(status=PaymentStatus.CANCELED))
            .annotate(topup_source=Subquery(topups.values("source")[:1]),
                      topup_by_key=Subquery(topups.values("requested_by_api_key")[:1]))
            .select_related("invoice", "payment_method").order_by("-created_at", "-id"))


def active_dunning(organization: Organization) -> list[DunningCase]:
    return list(DunningCase.objects.filter(organization=organization, status=DunningStatus.ACTIVE)
                .select_related("invoice"))
