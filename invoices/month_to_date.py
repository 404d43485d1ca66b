"""The one month-to-date figure: this month's interim invoice, cut off at one minute.

Every page and endpoint that says how much this month has cost so far (the dashboard's
two cards, the usage page, the interim invoice page, `GET /usage/month-to-date`,
`GET /invoices/interim` without `until`) shows `month_to_date(...)`, labelled with its
`as_of`. Before this, the usage card summed rated usage to the metering watermark while
the interim card ran the invoice handlers to "now": two cut-offs, two roundings, and the
later cut-off could show the lower number.

The figure is the interim invoice's total (lines rounded once each, discounts, tax), as
the month's invoice will say it. Its cut-off `as_of` is the minute up to which every
input the handlers read is complete: usage is rated below the metering watermark of the
organisation's chunk, and invoices read the hourly rollups, so a metering run not yet
rolled up holds the cut-off back to where it starts (runs are rolled up within a minute).
Metered events are read up to the same minute. Nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.utils import timezone

from accounts.models import Organization
from core.formatting import format_datetime
from core.money import ZERO, format_money
from invoices import engine
from invoices.pipeline import Bill, BillingContext, Line
from pricing.proration import month_start
from usage.selectors import usage_complete_until


@dataclass(frozen=True)
class MonthToDate:
    month: date  # the calendar month, first day
    as_of: datetime | None  # the cut-off: charges up to (not including) this minute; None: never metered
    currency: str
    total: Decimal = ZERO  # the figure: what the month's invoice says so far, tax included
    subtotal: Decimal = ZERO
    discount_total: Decimal = ZERO
    tax_total: Decimal = ZERO
    lines: tuple[Line, ...] = ()
    ctx: BillingContext | None = None
    bill: Bill | None = field(default=None, repr=False)

    @property
    def formatted_total(self) -> str:
        return format_money(self.total, self.currency)

    @property
    def formatted_tax(self) -> str:
        return format_money(self.tax_total, self.currency)

    @property
    def as_of_label(self) -> str:
        """How every page labels the figure: "to 2026-03-10 12:00 UTC" (in the reader's zone)."""
        return f"to {format_datetime(self.as_of)}" if self.as_of else "nothing metered yet"

    @property
    def by_product(self) -> dict[str, Decimal]:
        """Product code → its lines' amounts (before tax)."""
        out: dict[str, Decimal] = {}
        for line in self.lines:
            if line.product_code:
                out[line.product_code] = out.get(line.product_code, ZERO) + line.amount
        return out


def month_to_date(*, organization: Organization, now: datetime | None = None) -> MonthToDate:
    now = now or timezone.now()
    start = month_start(now)
    complete = usage_complete_until(organization=organization)
    empty = MonthToDate(month=start.date(), as_of=complete, currency=organization.currency)
    if complete is None or complete <= start:
        return empty  # nothing of this month is metered yet: zero, as of the last metered minute
    as_of = min(complete, now)
    ctx, bill = engine.interim_bill(organization=organization, until=as_of, now=now)
    if bill is None:
        return MonthToDate(month=start.date(), as_of=as_of, currency=organization.currency, ctx=ctx)
    return MonthToDate(
        month=start.date(), as_of=as_of, currency=bill.currency, total=bill.total, subtotal=bill.subtotal,
        discount_total=bill.discount_total, tax_total=bill.tax_total, lines=tuple(bill.lines), ctx=ctx, bill=bill,
    )

