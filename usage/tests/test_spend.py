"""The spend explorer's figures are the invoices' cents: per invoice line (resource,
product, state, price over a UTC month) the line's rounded amount split over its days, so
days, ISO weeks, months, products and resources all add up to the same total, and this
month's total is the interim invoice's usage subtotal."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.db.models.functions import TruncDate
from hypothesis import given
from hypothesis import strategies as st

from core.money import round_money
from invoices.models import LineKind
from invoices.month_to_date import month_to_date
from usage.models import UsageHourly
from usage.spend import GROUPINGS, INTERVALS, forecast, periods, projected, range_error, spend, split_rounded
from usage.tests.conftest import SPEND_NOW as NOW

pytestmark = pytest.mark.django_db

USAGE_KINDS = {LineKind.USAGE, LineKind.ADDON, LineKind.RECURRING}


def _spend(org, interval="day", group_by="product", start=date(2026, 3, 1), end=date(2026, 4, 1), label_key=""):
    return spend(organization=org, start=start, end=end, interval=interval, group_by=group_by, now=NOW,
                 label_key=label_key)


def test_this_months_spend_is_the_interim_invoices_usage_subtotal_to_the_cent(org, spend_history):
    mtd = month_to_date(organization=org, now=NOW)
    usage_lines = [line for line in mtd.lines if line.kind in USAGE_KINDS]
    assert usage_lines and len(usage_lines) == len(mtd.lines)  # nothing else on it: subtotal is usage
    explored = _spend(org, interval="month")
    assert explored.as_of == mtd.as_of == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert explored.total == sum((line.amount for line in usage_lines), Decimal(0)) == mtd.subtotal
    # Rounding each day's spend on its own would not add up to the invoice: the split does.
    days = (UsageHourly.objects.filter(organization=org, hour__gte=datetime(2026, 3, 1, tzinfo=UTC))
            .annotate(day=TruncDate("hour", tzinfo=UTC)).values("day", "resource_id", "product_id")
            .annotate(amount=Sum("amount")))
    assert sum((round_money(d["amount"], "USD") for d in days), Decimal(0)) != mtd.subtotal


def test_every_interval_and_grouping_adds_up_to_the_same_cents(org, spend_history):
    totals = set()
    for interval in INTERVALS:
        for group_by in GROUPINGS:
            extra = {"label_key": "team"} if group_by == "label" else {}  # none labelled: one group
            explored = _spend(org, interval=interval, group_by=group_by, start=date(2026, 2, 23), **extra)
            cells = [a for s in explored.series for a in s.amounts]
            assert all(a == a.quantize(Decimal("0.01")) for a in cells)
            assert sum(cells, Decimal(0)) == sum(explored.period_totals, Decimal(0)) == explored.total
            totals.add(explored.total)
    assert len(totals) == 1
    march = _spend(org, interval="month").total
    february = _spend(org, interval="month", start=date(2026, 2, 1), end=date(2026, 3, 1)).total
    assert totals == {march + february} and february > 0


def test_month_to_date_per_resource_is_the_invoices_lines_per_resource(org, spend_history):
    mtd = month_to_date(organization=org, now=NOW)
    by_resource: dict[str, Decimal] = {}
    names = {"srv-a": "web-1", "srv-b": "db-1", "srv-c": "batch"}
    from usage.models import Resource

    ids = dict(Resource.objects.filter(organization=org).values_list("pk", "external_id"))
    for line in mtd.lines:
        by_resource[ids[line.resource_id]] = by_resource.get(ids[line.resource_id], Decimal(0)) + line.amount
    fc = forecast(organization=org, now=NOW)
    assert {r.group.key: r.month_to_date for r in fc.resources} == by_resource
    assert {r.group.key: r.group.name for r in fc.resources} == names
    assert fc.month_to_date == mtd.subtotal


def test_the_forecast_is_month_to_date_plus_the_burn_rate_for_the_hours_left(org, spend_history):
    fc = forecast(organization=org, now=NOW)
    # From the 10:00 cut-off to 1 Apr: 29 days and 14 hours. Running: web-1 and db-1.
    assert fc.hours_left == Decimal(29 * 24 + 14)
    assert fc.hourly_rate == Decimal("0.0137") + Decimal("0.0419")
    rows = {r.group.key: r for r in fc.resources}
    assert rows["srv-a"].forecast == rows["srv-a"].month_to_date + round_money(Decimal("0.0137") * 710, "USD")
    assert rows["srv-b"].forecast == rows["srv-b"].month_to_date + round_money(Decimal("0.0419") * 710, "USD")
    assert rows["srv-c"].forecast == rows["srv-c"].month_to_date  # deleted: nothing more
    assert fc.forecast == sum((r.forecast for r in fc.resources), Decimal(0)) == (
        fc.month_to_date + round_money(fc.hourly_rate * 710, "USD"))
    # The days still to come, as the page draws them, add up to the same forecast.
    days = periods(date(2026, 3, 1), date(2026, 4, 1), "day")
    ahead = projected(days, hourly_rate=fc.hourly_rate, since=fc.as_of, now=NOW, currency="USD")
    assert ahead[0] == 0 and ahead[1] == round_money(fc.hourly_rate * 14, "USD")  # 2 Mar from 10:00
    assert fc.month_to_date + sum(ahead, Decimal(0)) == fc.forecast


def test_another_organisations_spend_is_never_counted(org, other_org, spend_history):
    assert _spend(other_org).total == 0 and _spend(other_org).series == []
    assert forecast(organization=other_org, now=NOW).resources == []
    assert _spend(org).total > 0


def test_weeks_are_iso_weeks_and_periods_half_open_and_clipped():
    # 1 Mar 2026 is a Sunday: the first week is clipped to that one day.
    assert periods(date(2026, 3, 1), date(2026, 3, 17), "week") == [
        (date(2026, 3, 1), date(2026, 3, 2)), (date(2026, 3, 2), date(2026, 3, 9)),
        (date(2026, 3, 9), date(2026, 3, 16)), (date(2026, 3, 16), date(2026, 3, 17))]
    assert periods(date(2028, 2, 28), date(2028, 3, 2), "day")[1] == (date(2028, 2, 29), date(2028, 3, 1))
    assert periods(date(2026, 12, 15), date(2027, 2, 1), "month") == [
        (date(2026, 12, 15), date(2027, 1, 1)), (date(2027, 1, 1), date(2027, 2, 1))]
    # ISO week 53 of 2026 runs from Monday 28 Dec into 2027.
    assert periods(date(2026, 12, 28), date(2027, 1, 4), "week") == [(date(2026, 12, 28), date(2027, 1, 4))]


def test_ranges_that_cannot_be_explored_name_their_field():
    today = date(2026, 3, 4)
    assert range_error(date(2026, 3, 4), date(2026, 3, 1), today=today)[0] == "end"
    assert range_error(date(2026, 3, 1), date(2026, 3, 1), today=today)[0] == "end"
    assert range_error(date(2025, 4, 1), date(2026, 5, 6), today=today)[0] == "end"  # 400 days
    assert range_error(date(2025, 1, 1), date(2025, 4, 1), today=today)[0] == "start"  # hourly history gone
    assert range_error(date(2025, 2, 1), date(2025, 4, 1), today=today) is None  # 28 Jan 2025 is kept
    assert range_error(date(2026, 3, 5), date(2026, 3, 9), today=today)[0] == "start"  # the future
    assert range_error(date(2025, 3, 1), date(2026, 3, 2), today=date(2026, 1, 20)) is None
    assert range_error(date(2026, 3, 1), date(2027, 3, 2), today=date(2026, 3, 1)) is None  # 366 days


@given(st.lists(st.decimals(min_value=-5, max_value=50, places=12, allow_nan=False), min_size=1, max_size=40))
def test_split_rounded_adds_up_to_the_rounded_sum_in_whole_cents(amounts):
    parts = split_rounded(amounts, "USD")
    assert sum(parts, Decimal(0)) == round_money(sum(amounts, Decimal(0)), "USD")
    assert all(p == p.quantize(Decimal("0.01")) for p in parts)
    assert all(abs(p - a) < Decimal("0.01") for p, a in zip(parts, amounts, strict=True))


def test_split_rounded_in_a_currency_without_minor_units():
    assert split_rounded([Decimal("0.4"), Decimal("0.4"), Decimal("0.4")], "JPY") == [1, 0, 0]
