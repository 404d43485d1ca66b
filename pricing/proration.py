"""Billing models as pure arithmetic over minutes: hourly (with monthly cap and minimum
billable time), monthly (prorated by the minute over the calendar month), overage.

Exact Decimals, no rounding (that happens once, on the invoice line). Callers that bill
incrementally (metering, minute by minute) use `capped_hourly_increment`, whose
increments over a month add up exactly to `capped_hourly_amount` of the month's total.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from core.errors import DomainError
from core.money import ZERO, require_decimal

MINUTES_PER_HOUR = 60


def _minutes(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DomainError("Minutes must be a whole number, zero or more.", field="minutes")
    return value


def hourly_amount(rate_per_hour: Decimal, minutes: int) -> Decimal:
    """Per-minute accrual at an hourly rate: $2.06/hour for 1 minute is $0.0343333…"""
    return require_decimal(rate_per_hour) * _minutes(minutes) / MINUTES_PER_HOUR


def billable_minutes(run_minutes: int, min_billable_minutes: int) -> int:
    """A run that happened at all is billed for at least the minimum billable time."""
    run_minutes = _minutes(run_minutes)
    return max(run_minutes, _minutes(min_billable_minutes)) if run_minutes else 0


def capped_hourly_amount(rate_per_hour: Decimal, minutes_in_month: int, monthly_cap: Decimal | None) -> Decimal:
    """What `minutes_in_month` minutes of one resource in one calendar month cost: never more than the cap."""
    amount = hourly_amount(rate_per_hour, minutes_in_month)
    if monthly_cap is None:
        return amount
    return min(amount, require_decimal(monthly_cap))


def capped_hourly_increment(
    rate_per_hour: Decimal, *, minutes_before: int, minutes: int, monthly_cap: Decimal | None
) -> Decimal:
    """The charge for `minutes` more minutes, when `minutes_before` minutes of the same
    resource were already billed this calendar month. Telescopes: summed over the month it
    equals `capped_hourly_amount` of the total, so the cap holds however the month is sliced."""
    before = capped_hourly_amount(rate_per_hour, _minutes(minutes_before), monthly_cap)
    after = capped_hourly_amount(rate_per_hour, minutes_before + _minutes(minutes), monthly_cap)
    return after - before


def month_start(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(at: datetime) -> datetime:
    start = month_start(at)
    return (start + timedelta(days=32)).replace(day=1)


def minutes_in_month(at: datetime) -> int:
    """43,200 in a 30-day month; 41,760 in February of a leap year."""
    at = at.astimezone(UTC)
    return calendar.monthrange(at.year, at.month)[1] * 24 * MINUTES_PER_HOUR


def _check_period(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise DomainError("Times must be timezone-aware (UTC).")
    if end < start:
        raise DomainError("The period ends before it starts.")


def monthly_prorated_amount(monthly_amount: Decimal, start: datetime, end: datetime) -> Decimal:
    """A monthly fee over `[start, end)`, prorated by the minute within each calendar month
    it touches: a whole month costs exactly the fee, whatever the month's length."""
    monthly_amount = require_decimal(monthly_amount)
    _check_period(start, end)
    total = ZERO
    cursor = start.astimezone(UTC)
    end = end.astimezone(UTC)
    while cursor < end:
        boundary = min(next_month_start(cursor), end)
        if boundary - cursor == next_month_start(cursor) - month_start(cursor):
            total += monthly_amount  # a whole month: exact, no division
        else:
            minutes = int((boundary - cursor).total_seconds()) // 60
            total += monthly_amount * minutes / minutes_in_month(cursor)
        cursor = boundary
    return total


def overage_quantity(used: Decimal, included: Decimal) -> Decimal:
    """Units above the included allowance of the period (never negative)."""
    return max(require_decimal(used) - require_decimal(included), ZERO)
