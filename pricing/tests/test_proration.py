from datetime import UTC, datetime
from decimal import Decimal as D

from core.money import round_money
from pricing.proration import (
    billable_minutes,
    capped_hourly_amount,
    capped_hourly_increment,
    hourly_amount,
    minutes_in_month,
    monthly_prorated_amount,
    overage_quantity,
)


def test_a_minute_at_an_hourly_rate_is_a_sixtieth_kept_to_twelve_places():
    minute = hourly_amount(D("2.06"), 1)
    assert minute.quantize(D("0.000000000001")) == D("0.034333333333")
    assert hourly_amount(D("2.06"), 60) == D("2.06")


def test_monthly_cap_holds_across_a_month_of_minutes():
    rate, cap = D("0.119"), D("79.00")
    month = minutes_in_month(datetime(2026, 1, 1, tzinfo=UTC))  # 44,640
    total = sum((capped_hourly_increment(rate, minutes_before=m, minutes=1, monthly_cap=cap) for m in range(month)),
                D("0"))
    assert total == cap  # uncapped it would be 88.536
    assert hourly_amount(rate, month) == D("88.536")


def test_cap_is_reached_on_the_exact_minute_and_costs_nothing_after():
    rate, cap = D("6.00"), D("10.00")  # cap reached after 100 minutes
    assert capped_hourly_increment(rate, minutes_before=99, minutes=1, monthly_cap=cap) == D("0.1")
    assert capped_hourly_increment(rate, minutes_before=100, minutes=1, monthly_cap=cap) == D("0")
    assert capped_hourly_amount(rate, 1000, cap) == D("10.00")


def test_uncapped_increments_add_up_to_the_whole():
    parts = [capped_hourly_increment(D("1.79"), minutes_before=m, minutes=7, monthly_cap=None) for m in range(0, 70, 7)]
    assert sum(parts, D("0")) == hourly_amount(D("1.79"), 70)


def test_minimum_billable_time_applies_to_short_runs_only():
    assert billable_minutes(3, 10) == 10
    assert billable_minutes(10, 10) == 10
    assert billable_minutes(47, 10) == 47
    assert billable_minutes(0, 10) == 0  # a run that never happened costs nothing


def test_a_whole_month_costs_exactly_the_monthly_fee_whatever_its_length():
    fee = D("3.00")
    feb = monthly_prorated_amount(fee, datetime(2028, 2, 1, tzinfo=UTC), datetime(2028, 3, 1, tzinfo=UTC))
    jan = monthly_prorated_amount(fee, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    assert feb == jan == fee


def test_monthly_fee_prorates_by_the_minute_in_a_leap_february():
    assert minutes_in_month(datetime(2028, 2, 10, tzinfo=UTC)) == 41_760
    half_day = monthly_prorated_amount(D("41.76"), datetime(2028, 2, 29, 0, tzinfo=UTC),
                                       datetime(2028, 2, 29, 12, tzinfo=UTC))
    assert half_day == D("0.72")  # 720 of 41,760 minutes


def test_monthly_fee_across_a_month_end_prorates_each_month_by_its_own_length():
    # 31 Jan 12:00 → 1 Feb 12:00: 720/44,640 of January + 720/40,320 of February (2026 is not a leap year).
    amount = monthly_prorated_amount(D("100"), datetime(2026, 1, 31, 12, tzinfo=UTC),
                                     datetime(2026, 2, 1, 12, tzinfo=UTC))
    assert amount == D("100") * 720 / 44_640 + D("100") * 720 / 40_320
    assert round_money(amount, "USD") == D("3.40")


def test_overage_counts_only_units_above_the_allowance():
    assert overage_quantity(D("1250.5"), D("1000")) == D("250.5")
    assert overage_quantity(D("900"), D("1000")) == D("0")
