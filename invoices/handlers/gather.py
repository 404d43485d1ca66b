"""Gather: one set-based read per kind of input for every organisation in the context,
then one `Bill` per organisation that has anything to bill."""

from __future__ import annotations

from invoices import sources
from invoices.pipeline import Bill, BillingContext


class GatherCharges:
    requires: frozenset[str] = frozenset()
    provides = frozenset({"bills"})

    def __call__(self, ctx: BillingContext) -> None:
        ids = ctx.organization_ids
        orgs = sources.organizations(ids)
        usage = sources.usage_rows(ids, ctx.span_start, ctx.span_end)
        metered = sources.metered_quantities(ids, ctx.period_start, ctx.span_start, ctx.span_end)
        minimums = sources.contract_minimums(ids, ctx.period_start, ctx.period_end) if ctx.closes_period else {}
        for org_id, org in orgs.items():
            ctx.bills[org_id] = Bill(
                organization=org,
                currency=org.currency,
                inputs={
                    "usage": usage.get(org_id, []),
                    "metered": metered.get(org_id, []),
                    "minimum": minimums.get(org_id),
                },
            )
