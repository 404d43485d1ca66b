"""Monthly fees, prorated by the minute for the part of the month a resource had them."""

from __future__ import annotations

from decimal import Decimal

from invoices.models import LineKind
from invoices.pipeline import BillingContext, Line, minutes_between


class RecurringFees:
    def __call__(self, ctx: BillingContext) -> None:
        month_minutes = Decimal(minutes_between(ctx.period_start, ctx.period_end))
        for bill in ctx.bills.values():
            for sub in bill.inputs["subscriptions"]:
                start, end = max(sub.start, ctx.span_start), min(sub.end, ctx.span_end)
                minutes = minutes_between(start, end)
                if minutes <= 0:
                    continue
                # Fraction of the calendar month, exact; rounded once, on the line.
                months = Decimal(minutes) / month_minutes
                full = minutes == month_minutes
                bill.add(Line(
                    kind=LineKind.RECURRING,
                    group=sub.group,
                    description=f"{sub.product_name} monthly fee" + ("" if full else f", {start:%-d %b %H:%M}–{end:%-d %b %H:%M}"),
                    quantity=months,
                    unit="month",
                    unit_price=sub.monthly_amount,
                    amount=sub.monthly_amount * months,
                    product_code=sub.product_code,
                    product_id=sub.product_id,
                    resource_id=sub.resource_id,
                    price_id=sub.price_id,
                    service_start=start,
                    service_end=end,
                ))
