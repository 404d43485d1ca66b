"""Portal download: the organisation's payments as CSV (amounts as money at the
currency's places, times ISO 8601 in UTC)."""

from __future__ import annotations

from django.views.decorators.http import require_GET

from accounts.portal import portal_view
from core.csv_export import csv_download, datetime_cell, money_cell
from payments import selectors

CSV_HEADER = ["created_at_utc", "succeeded_at_utc", "failed_at_utc", "purpose", "provider", "status", "invoice",
              "currency", "amount", "amount_refunded", "reference", "failure"]


@portal_view("billing:read")
@require_GET
def payments_csv(request):
    org = request.membership.organization
    rows = ([datetime_cell(p.created_at), datetime_cell(p.succeeded_at), datetime_cell(p.failed_at), p.purpose,
             p.provider, p.status, p.invoice.number if p.invoice else "", p.currency,
             money_cell(p.amount, p.currency), money_cell(p.amount_refunded, p.currency), p.reference,
             p.failure_message]
            for p in selectors.payment_history(org).iterator(chunk_size=2000))
    return csv_download(f"payments-{org.slug}.csv", CSV_HEADER, rows)
