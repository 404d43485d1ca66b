"""Contract minimum true-up: a committed monthly spend tops up the charges to it."""

from __future__ import annotations

from core.money import ZERO, format_money
from invoices.models import LineKind
from invoices.pipeline import BillingContext, Line


class ContractMinimum:
    # Tops up every other charge of the month, and is a charge itself.
    requires = frozenset({"bills", "charges"})
    provides = frozenset({"charges", "lines"})

    def __call__(self, ctx: BillingContext) -> None:
        if not ctx.closes_period:
            return  # a per-period charge: it belongs to the span that ends the month
        for bill in ctx.bills.values():
            minimum = bill.inputs.get("minimum")
            if minimum is None or minimum.currency != bill.currency:
                continue
            # The month's charges so far: earlier interim spans are never stored, so the
            # scheduled run (the whole month) is where this is decided.
            charges = sum((ln.amount for ln in bill.charge_lines), ZERO)
            shortfall = minimum.amount - charges
            if shortfall > ZERO:
                bill.add(Line(
                    kind=LineKind.MINIMUM,
                    group="Contract",
                    description=f"Committed monthly spend {format_money(minimum.amount, bill.currency)}: true-up",
                    quantity=ZERO + 1,
                    unit="month",
                    unit_price=shortfall,
                    amount=shortfall,
                    service_start=ctx.period_start,
                    service_end=ctx.period_end,
                ))
