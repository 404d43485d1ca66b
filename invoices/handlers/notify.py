"""Notify: email each finalized invoice with its PDF, after commit, from a worker."""

from __future__ import annotations

from functools import partial

from django.db import transaction

from invoices.pipeline import BillingContext


class Notify:
    requires = frozenset({"invoice"})
    provides: frozenset[str] = frozenset()
    side_effects = True  # sends

    def __call__(self, ctx: BillingContext) -> None:
        if not ctx.send_email:
            return
        from invoices.tasks import invoice_email_task

        for bill in ctx.bills.values():
            if bill.invoice_id is not None:
                transaction.on_commit(partial(invoice_email_task.delay, bill.invoice_id))
