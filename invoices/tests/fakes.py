"""A gather step for tests of the later steps: the inputs an organisation would have
had from usage, given directly. Installed by the `fixture_pipeline` fixture."""

from __future__ import annotations

from invoices import sources
from invoices.pipeline import Bill, BillingContext

# organisation id → {"usage": [UsageRow per hour], "metered": [MeteredQuantity or fn(ctx)], "minimum": Minimum}
INPUTS: dict[int, dict] = {}


class FixtureCharges:
    requires: frozenset[str] = frozenset()
    provides = frozenset({"bills"})

    def __call__(self, ctx: BillingContext) -> None:
        for org_id, org in sources.organizations(ctx.organization_ids).items():
            given = INPUTS.get(org_id, {})
            ctx.bills[org_id] = Bill(organization=org, currency=org.currency, inputs={
                "usage": sources.aggregate_usage(
                    [u for u in given.get("usage", []) if ctx.span_start <= u.start and u.end <= ctx.span_end]
                ),
                "metered": [m(ctx) if callable(m) else m for m in given.get("metered", [])],
                "minimum": given.get("minimum") if ctx.closes_period else None,
            })
