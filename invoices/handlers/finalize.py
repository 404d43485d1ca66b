"""Finalize: store the chunk's drafts (one transaction of a few multi-row statements),
then number and open them all (a second one, with ONE counter update for the chunk).

If either step fails for the chunk as a whole, it is done again one organisation at a
time (`invoice_store_draft`, `invoice_finalize`), so a failure is kept on the context for
the organisation at fault only: the others of the chunk are still billed, and the engine
records and retries the failed one."""

from __future__ import annotations

import logging

from invoices import services
from invoices.pipeline import BillingContext

log = logging.getLogger(__name__)


class Finalize:
    requires = frozenset({"balance"})
    provides = frozenset({"invoice"})
    side_effects = True  # stores and numbers

    def __call__(self, ctx: BillingContext) -> None:
        drafts, failures = services.invoices_store_drafts(bills=list(ctx.bills.values()), ctx=ctx)
        ctx.failures.update(failures)
        if not drafts:
            return
        try:
            issued = services.invoices_finalize(invoices=list(drafts.values()), render_pdf=ctx.render_pdf, now=ctx.now)
        except Exception as exc:  # noqa: BLE001 - finalized one by one below
            if len(drafts) == 1:
                ctx.failures[next(iter(drafts))] = exc
                return
            log.warning("finalizing a chunk of %d failed (%s); finalizing one by one", len(drafts), exc)
            issued = []
            for org_id, draft in drafts.items():
                try:
                    issued.append(services.invoice_finalize(invoice=draft, render_pdf=ctx.render_pdf, now=ctx.now))
                except Exception as one:  # noqa: BLE001 - recorded per organisation by the engine
                    ctx.failures[org_id] = one
        for invoice in issued:
            ctx.bills[invoice.organization_id].invoice_id = invoice.pk
