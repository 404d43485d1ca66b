"""`UsageDayTotal` is the daily rollup summed per day, currency, product, state and price,
kept by statement triggers on `usage_usagedaily` (migration 0010): whoever writes the
rollup, by whatever statement, the totals stay its sums."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db import connection
from django.db.models import Sum

from usage import metering
from usage.models import UsageDaily, UsageDayTotal
from usage.rollups import rollup_pending
from usage.tests.conftest import at
from usage.tests.test_metering import flavour, start_server, stop  # noqa: F401 - the fixture

KEY = ("day", "currency", "product_id", "state", "price_id")


def _summed() -> dict[tuple, tuple[int, Decimal]]:
    return {tuple(r[k] for k in KEY): (r["m"], r["a"])
            for r in UsageDaily.objects.values(*KEY).annotate(m=Sum("minutes"), a=Sum("amount")).order_by()}


def _totals() -> dict[tuple, tuple[int, Decimal]]:
    return {tuple(getattr(t, k) for k in KEY): (t.minutes, t.amount)
            for t in UsageDayTotal.objects.all() if (t.minutes, t.amount) != (0, Decimal(0))}


def test_metering_rollups_and_their_corrections_keep_the_day_totals(org, flavour, clock):  # noqa: F811
    first = start_server(org, flavour, created=at(9, 0), started=at(10, 17))
    second = start_server(org, flavour, created=at(9, 0), started=at(10, 0), external_id="srv-2")
    metering.meter_pass(until=at(12, 0))
    assert rollup_pending() > 0
    # Both servers' minutes in one total: 103 + 120.
    assert _totals() == _summed() and sum(m for m, _a in _totals().values()) == 223
    stop(first, at(11, 0))  # late: reversals upsert rows already rolled up
    stop(second, at(11, 30))
    metering.meter_pass(until=at(12, 1))
    assert rollup_pending() > 0
    assert _totals() == _summed()
    assert sum(m for m, _a in _totals().values()) == 43 + 90


def test_updates_and_deletes_of_rollup_rows_move_the_day_totals(org, flavour, clock):  # noqa: F811
    start_server(org, flavour, created=at(9, 0), started=at(10, 0))
    metering.meter_pass(until=at(12, 0))
    rollup_pending()
    with connection.cursor() as cursor:
        # A row moved to another day and state, then one deleted: one statement each.
        cursor.execute("UPDATE usage_usagedaily SET day = day - 1, state = 'stopped', minutes = minutes + 5")
    assert _totals() == _summed() and {k[0] for k in _totals()} == {date(2026, 3, 9)}
    UsageDaily.objects.all().delete()
    assert _totals() == {} and UsageDayTotal.objects.filter(day__lt=date.max).exists()
