"""Usage lines from the rolled-up history, and metered overage priced by the price book."""

from __future__ import annotations

from decimal import Decimal

from invoices import sources
from invoices.models import LineKind
from invoices.pipeline import BillingContext, Line

MINUTES_PER_HOUR = Decimal(60)
RATE_PLACES = Decimal("0.000001")


def rate(amount: Decimal, quantity: Decimal) -> Decimal:
    """The rate a line shows, to six places; the line's amount is the metered sum."""
    return (amount / quantity).quantize(RATE_PLACES) if quantity else Decimal(0)


def usage_line(row: sources.UsageRow, *, kind: str, description: str, quantity: Decimal, unit: str) -> Line:
    """A line from rolled-up, already metered usage: its amount is the unrounded metered
    sum (rounded once by `Bill.add`), and for prepaid organisations it was already drawn
    from the credit balance minute by minute."""
    return Line(
        kind=kind, group=row.group, description=description, quantity=quantity, unit=unit,
        unit_price=rate(row.amount, quantity), amount=row.amount, product_code=row.product_code,
        product_id=row.product_id, resource_id=row.resource_id, price_id=row.price_id, state=row.state,
        service_start=row.start, service_end=row.end, settled_by_metering=True,
    )


def state_label(state: str) -> str:
    return "" if state in ("", "running") else f" ({state})"


class HourlyUsage:
    """One line per resource, product, state and price: a price change or a state change
    (hibernation) splits a resource's usage into lines; a resize changes its product."""

    requires = frozenset({"bills"})
    provides = frozenset({"charges", "lines"})

    def __call__(self, ctx: BillingContext) -> None:
        for bill in ctx.bills.values():
            for row in bill.inputs["usage"]:
                if row.unit == "month":
                    continue  # RecurringFees
                kind = LineKind.ADDON if row.billing_model == "addon" else LineKind.USAGE
                bill.add(usage_line(row, kind=kind, description=f"{row.product_name}{state_label(row.state)}",
                                    quantity=Decimal(row.minutes) / MINUTES_PER_HOUR, unit="hour"))


class MeteredOverage:
    """Metered quantities above the included allowance of the period. The allowance is
    per calendar month: the quantity billed for a span is the overage at the span's end
    minus the overage already reached at its start, so interim + rest = the month."""

    requires = frozenset({"bills"})
    provides = frozenset({"charges", "lines"})

    def __call__(self, ctx: BillingContext) -> None:
        for bill in ctx.bills.values():
            for m in bill.inputs["metered"]:
                over_before = max(m.quantity_before - m.included, Decimal(0))
                over_after = max(m.quantity_before + m.quantity - m.included, Decimal(0))
                if over_after <= over_before:
                    continue
                amount_after = sources.price_quantity(m.price, over_after)
                amount_before = sources.price_quantity(m.price, over_before) if over_before else Decimal(0)
                quantity = over_after - over_before
                amount = amount_after - amount_before
                bill.add(Line(
                    kind=LineKind.OVERAGE,
                    group=m.group,
                    description=(f"{m.product_name} above {m.included.normalize():f} {m.unit} included"
                                 if m.included else m.product_name),
                    quantity=quantity,
                    unit=m.unit,
                    unit_price=(amount / quantity) if quantity else Decimal(0),
                    amount=amount,
                    product_code=m.product_code,
                    product_id=m.product_id,
                    resource_id=m.resource_id,
                    price_id=m.price_id,
                    service_start=ctx.span_start,
                    service_end=ctx.span_end,
                ))
