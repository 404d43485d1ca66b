"""Notify: email each finalized invoice with its PDF, after commit, from a worker."""

from __future__ import annotations

from invoices.pipeline import BillingContext


class Notify:
    requires = frozenset({"invoice"})
    provides: frozenset[str] = frozenset()
    side_effects = True  # sends

    def __call__(self, ctx: BillingContext) -> None:
        if not ctx.send_email:
            return
        from core import outbox

        for bill in ctx.bills.values():
            if bill.invoice_id is not None:
                outbox.enqueue("invoices.email", bill.invoice_id)
