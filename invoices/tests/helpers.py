"""Building usage the way metering rolls it up: one row per clock hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from invoices.sources import UsageRow
from pricing.proration import hourly_amount, monthly_prorated_amount

HOUR = timedelta(hours=1)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def hourly_rows(*, start: datetime, end: datetime, rate: str, product: str = "cpu-4", resource: int = 1,
                group: str = "web-1", state: str = "running", price_id: int = 1, billing_model: str = "hourly",
                monthly_fee: str | None = None) -> list[UsageRow]:
    rows = []
    t = start
    while t < end:
        stop = min(t + HOUR, end)
        minutes = int((stop - t).total_seconds()) // 60
        if billing_model == "monthly":
            amount = monthly_prorated_amount(Decimal(monthly_fee), t, stop)
        else:
            amount = hourly_amount(Decimal(rate), minutes)
        rows.append(UsageRow(resource_id=resource, group=group, product_id=hash(product) % 10_000,
                             product_code=product, product_name=product.upper(), billing_model=billing_model,
                             unit="month" if billing_model == "monthly" else "hour",
                             state=state, price_id=price_id, minutes=minutes, amount=amount, start=t, end=stop))
        t = stop
    return rows
