"""Monthly fees, prorated by the minute for the part of the month a resource held them.

Metering accrues a monthly-billed product minute by minute at fee ÷ minutes of the
calendar month (so February 2028 has 41,760 minutes); this step turns those rolled-up
minutes into one line per resource, product, state and price, in months."""

from __future__ import annotations

from decimal import Decimal

from invoices.handlers.usage_lines import usage_line
from invoices.models import LineKind
from invoices.pipeline import BillingContext, minutes_between


class RecurringFees:
    requires = frozenset({"bills"})
    provides = frozenset({"charges", "lines"})

    def __call__(self, ctx: BillingContext) -> None:
        month_minutes = Decimal(minutes_between(ctx.period_start, ctx.period_end))
        for bill in ctx.bills.values():
            for row in bill.inputs["usage"]:
                if row.unit != "month":
                    continue
                partial = "" if row.minutes == month_minutes else f", {row.start:%-d %b %H:%M}–{row.end:%-d %b %H:%M}"
                kind = LineKind.ADDON if row.billing_model == "addon" else LineKind.RECURRING
                bill.add(usage_line(row, kind=kind, description=f"{row.product_name} monthly fee{partial}",
                                    quantity=Decimal(row.minutes) / month_minutes, unit="month"))
