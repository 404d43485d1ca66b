"""A quote: what a quantity or a duration of a product costs, at the rates in force at `at`.

Pure over a `ResolvedPrice`: the API resolves the price, this computes. It uses the same
arithmetic metering and invoicing use (`proration`, `quantity_pricing`), so a quote is
what the bill will say as long as the price does not change during the period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from core.errors import DomainError
from core.money import ZERO, round_money
from pricing.models import PriceUnit
from pricing.proration import (
    billable_minutes,
    capped_hourly_amount,
    month_start,
    monthly_prorated_amount,
    next_month_start,
    overage_quantity,
)
from pricing.quantity_pricing import BreakdownLine
from pricing.resolver import ResolvedPrice


@dataclass(frozen=True)
class Quote:
    price: ResolvedPrice
    amount: Decimal  # exact
    rounded_amount: Decimal  # to the currency's minor unit, as an invoice line would be
    breakdown: tuple[BreakdownLine, ...]


def _hourly(price: ResolvedPrice, minutes: int, at: datetime) -> tuple[Decimal, list[BreakdownLine]]:
    billed = billable_minutes(minutes, price.min_billable_minutes)
    lines = []
    if billed != minutes:
        lines.append(BreakdownLine(f"Minimum billable time: {minutes} min billed as {billed} min",
                                   Decimal(billed), ZERO, ZERO, ZERO))
    # The cap is per calendar month: split the run at month boundaries.
    total, cursor, left = ZERO, at, billed
    while left > 0:
        month_minutes = int((next_month_start(cursor) - cursor).total_seconds()) // 60
        chunk = min(left, month_minutes)
        amount = capped_hourly_amount(price.amount, chunk, price.monthly_cap)
        label = f"{chunk} min in {month_start(cursor):%B %Y} at {price.amount}/hour"
        if price.monthly_cap is not None and amount == price.monthly_cap:
            label += f", capped at {price.monthly_cap} for the month"
        lines.append(BreakdownLine(label, Decimal(chunk) / 60, price.amount, ZERO, amount))
        total += amount
        left -= chunk
        cursor = next_month_start(cursor)
    return total, lines


def quote_price(*, price: ResolvedPrice, at: datetime, quantity: Decimal | None = None,
                duration_minutes: int | None = None) -> Quote:
    unit = price.unit
    if unit == PriceUnit.HOUR:
        if duration_minutes is None:
            raise DomainError("An hourly price is quoted for a duration: give duration_minutes.",
                              field="duration_minutes")
        per_resource, lines = _hourly(price, duration_minutes, at)
        count = quantity if quantity is not None else Decimal(1)
        amount = per_resource * count
        if count != 1:
            lines.append(BreakdownLine(f"× {count} resources", count, per_resource, ZERO, amount))
    elif unit in (PriceUnit.MONTH, PriceUnit.GB_MONTH):
        count = quantity if quantity is not None else Decimal(1)
        monthly = price.price(count)
        lines = list(monthly.breakdown)
        amount = monthly.amount
        if duration_minutes is not None:
            end = at + timedelta(minutes=duration_minutes)
            amount = monthly_prorated_amount(monthly.amount, at, end)
            lines.append(BreakdownLine(f"Prorated by the minute over {duration_minutes} min", Decimal(duration_minutes),
                                       ZERO, ZERO, amount))
    else:
        if quantity is None:
            raise DomainError("A usage price is quoted for a quantity: give quantity.", field="quantity")
        billable = overage_quantity(quantity, price.included_quantity)
        lines = []
        if price.included_quantity:
            lines.append(BreakdownLine(f"Included allowance: {price.included_quantity}", min(quantity, price.included_quantity),
                                       ZERO, ZERO, ZERO))
        priced = price.price(billable)
        lines.extend(priced.breakdown)
        amount = priced.amount
    return Quote(price, amount, round_money(amount, price.currency), tuple(lines))
