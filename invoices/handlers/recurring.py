"""Monthly fees, prorated by the minute for the part of the month a resource held them.

Metering accrues a monthly-billed product minute by minute at fee ÷ minutes of the
calendar month (so February 2028 has 41,760 minutes); this step turns those rolled-up
minutes into one line per resource, product, state and price, in months."""

from __future__ import annotations

from decimal import Decimal

from invoices.handlers.usage import rate
from invoices.models import LineKind
from invoices.pipeline import BillingContext, Line, minutes_between

MONTHLY = "monthly"


class RecurringFees:
    def __call__(self, ctx: BillingContext) -> None:
        month_minutes = Decimal(minutes_between(ctx.period_start, ctx.period_end))
        for bill in ctx.bills.values():
            for row in bill.inputs["usage"]:
                if row.billing_model != MONTHLY:
                    continue
                months = Decimal(row.minutes) / month_minutes
                partial = "" if row.minutes == month_minutes else f", {row.start:%-d %b %H:%M}–{row.end:%-d %b %H:%M}"
                bill.add(Line(
                    kind=LineKind.RECURRING,
                    group=row.group,
                    description=f"{row.product_name} monthly fee{partial}",
                    quantity=months,
                    unit="month",
                    unit_price=rate(row.amount, months),
                    amount=row.amount,
                    product_code=row.product_code,
                    product_id=row.product_id,
                    resource_id=row.resource_id,
                    price_id=row.price_id,
                    state=row.state,
                    service_start=row.start,
                    service_end=row.end,
                    settled_by_metering=True,
                ))
