"""The invoice.* webhook events (webhooks.catalogue), emitted in the transaction that
changes the invoice."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from core.money import round_money
from invoices.models import Invoice


def invoice_data(inv: Invoice) -> dict:
    return {
        "invoice_id": inv.pk, "number": inv.number, "status": inv.status, "period_start": inv.period_start,
        "period_end": inv.period_end, "currency": inv.currency, "total": str(round_money(inv.total, inv.currency)),
        "amount_due": str(round_money(inv.amount_due, inv.currency)), "due_at": inv.due_at,
    }


def emit_invoices(event_type: str, invoices: Iterable[Invoice], *, dedup: bool = False) -> None:
    from webhooks.services import Event, emit_many

    emit_many([Event(type=event_type, organization_id=inv.organization_id, data=invoice_data(inv),
                     dedup_key=f"{event_type}:{inv.pk}" if dedup else "") for inv in invoices])


OVERDUE_LOOKBACK_DAYS = 7  # invoices overdue longer than this before a scan are not announced late
OVERDUE_BATCH = 1000


def emit_overdue(*, now: datetime | None = None) -> int:
    """invoice.overdue once per invoice (its dedup key), for open invoices whose due date
    passed in the last `OVERDUE_LOOKBACK_DAYS`: safe to run as often as wanted, and an
    hour's outage only makes the event late. Returns how many invoices were looked at."""
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from invoices.models import InvoiceStatus

    now = now or timezone.now()
    seen = 0
    last_id = 0
    while True:
        batch = list(Invoice.objects.filter(
            status=InvoiceStatus.OPEN, due_at__lte=now, due_at__gt=now - timedelta(days=OVERDUE_LOOKBACK_DAYS),
            pk__gt=last_id).order_by("pk")[:OVERDUE_BATCH])
        if not batch:
            return seen
        with transaction.atomic():
            emit_invoices("invoice.overdue", batch, dedup=True)
        seen += len(batch)
        last_id = batch[-1].pk
