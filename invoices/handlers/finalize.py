"""Finalize: store the invoice (one transaction), then number it (a short one)."""

from __future__ import annotations

from invoices import services
from invoices.pipeline import BillingContext


class Finalize:
    def __call__(self, ctx: BillingContext) -> None:
        for bill in ctx.bills.values():
            invoice = services.invoice_store_draft(bill=bill, ctx=ctx)
            if invoice is None:
                continue
            invoice = services.invoice_finalize(invoice=invoice, render_pdf=ctx.render_pdf, now=ctx.now)
            bill.invoice_id = invoice.pk
