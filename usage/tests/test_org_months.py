"""`UsageOrgMonth` is the daily rollup summed per organisation, currency, product and
calendar month, kept by statement triggers on `usage_usagedaily` (migration 0014): whoever
writes the rollup, by whatever statement, the sums stay its sums, and `rows` says how many
rollup rows each sums (0: none left, so the finance reports see no product there)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Sum
from django.db.models.functions import TruncMonth

from usage import metering
from usage.models import UsageDaily, UsageOrgMonth
from usage.rollups import rollup_pending
from usage.tests.conftest import at
from usage.tests.test_metering import flavour, start_server, stop  # noqa: F401 - the fixture

KEY = ("month", "currency", "organization_id", "product_id")


def _summed() -> dict[tuple, tuple[int, int, Decimal]]:
    return {tuple(r[k] for k in KEY): (r["n"], r["m"], r["a"])
            for r in UsageDaily.objects.annotate(month=TruncMonth("day")).values(*KEY)
            .annotate(n=Count("id"), m=Sum("minutes"), a=Sum("amount")).order_by()}


def _stored() -> dict[tuple, tuple[int, int, Decimal]]:
    return {tuple(getattr(t, k) for k in KEY): (t.rows, t.minutes, t.amount)
            for t in UsageOrgMonth.objects.all() if t.rows}


def test_metering_rollups_and_their_corrections_keep_the_month_sums(org, flavour, clock):  # noqa: F811
    first = start_server(org, flavour, created=at(9, 0), started=at(10, 17))
    second = start_server(org, flavour, created=at(9, 0), started=at(10, 0), external_id="srv-2")
    metering.meter_pass(until=at(12, 0))
    assert rollup_pending() > 0
    # Both servers' rows in one sum: 103 + 120 minutes.
    assert _stored() == _summed() and sum(m for _n, m, _a in _stored().values()) == 223
    stop(first, at(11, 0))  # late: reversals upsert rows already rolled up
    stop(second, at(11, 30))
    metering.meter_pass(until=at(12, 1))
    assert rollup_pending() > 0
    assert _stored() == _summed()
    assert sum(m for _n, m, _a in _stored().values()) == 43 + 90


def test_updates_and_deletes_of_rollup_rows_move_the_month_sums(org, flavour, clock):  # noqa: F811
    start_server(org, flavour, created=at(9, 0), started=at(10, 0))
    metering.meter_pass(until=at(12, 0))
    rollup_pending()
    before = _stored()
    assert before and {k[0] for k in before} == {date(2026, 3, 1)}
    with connection.cursor() as cursor:
        # Rows moved to the month before and given more minutes, in one statement.
        cursor.execute("UPDATE usage_usagedaily SET day = day - 10, minutes = minutes + 5")
    assert _stored() == _summed() and {k[0] for k in _stored()} == {date(2026, 2, 1)}
    # March's sums are still there, summing no row.
    assert UsageOrgMonth.objects.filter(month=date(2026, 3, 1), rows=0, minutes=0, amount=0).exists()
    UsageDaily.objects.all().delete()
    assert _stored() == {} and UsageOrgMonth.objects.filter(month=date(2026, 2, 1), rows=0).exists()
