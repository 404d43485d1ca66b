"""Finalize: store each organisation's invoice (one transaction), then number it (a
short one). A failure is kept on the context for that organisation only: the others of
the chunk are still billed, and the engine records and retries the failed one."""

from __future__ import annotations

from invoices import services
from invoices.pipeline import BillingContext


class Finalize:
    requires = frozenset({"balance"})
    provides = frozenset({"invoice"})
    side_effects = True  # stores and numbers

    def __call__(self, ctx: BillingContext) -> None:
        for org_id, bill in ctx.bills.items():
            try:
                invoice = services.invoice_store_draft(bill=bill, ctx=ctx)
                if invoice is None:
                    continue
                invoice = services.invoice_finalize(invoice=invoice, render_pdf=ctx.render_pdf, now=ctx.now)
            except Exception as exc:  # noqa: BLE001 - recorded per organisation by the engine
                ctx.failures[org_id] = exc
                continue
            bill.invoice_id = invoice.pk
