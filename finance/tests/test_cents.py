"""The carry rule, over random amounts: the journal's cents of the ledger's 12 places."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from core.money import round_money
from finance.journal import cents

TWELVE = Decimal("1E-12")
twelve_places = st.integers(min_value=-10**15, max_value=10**15).map(lambda n: Decimal(n) * TWELVE)
whole_cents = st.integers(min_value=-10**8, max_value=10**8).map(lambda n: Decimal(n) / 100)
currencies = st.sampled_from(["EUR", "JPY", "BHD"])


@given(twelve_places, st.integers(min_value=-10**8, max_value=10**8), currencies)
def test_adding_whole_minor_units_moves_the_cents_by_exactly_that(x, units, currency):
    a = Decimal(units).scaleb(-{"EUR": 2, "JPY": 0, "BHD": 3}[currency])
    assert cents(x + a, currency) == cents(x, currency) + a


@given(st.lists(st.one_of(twelve_places, whole_cents), max_size=40))
def test_booked_amounts_telescope_to_the_ledger_sum_in_cents(movements):
    running, booked = Decimal(0), Decimal(0)
    for amount in movements:
        step = cents(running + amount, "EUR") - cents(running, "EUR")
        if amount == amount.quantize(Decimal("0.01")):
            assert step == amount  # a top-up, payment or invoice draw books exactly
        running += amount
        booked += step
        assert booked == cents(running, "EUR")
        assert abs(booked - running) <= Decimal("0.005")


@given(twelve_places)
@example(Decimal("-0.005"))
@example(Decimal("-1.235"))
@example(Decimal("0.005"))
def test_the_carry_rule_is_the_invoices_rounding_except_at_negative_ties(x):
    # Half a cent below zero: the invoices round away from zero, the carry towards +∞.
    if x < 0 and x == x.quantize(Decimal("0.001")) and abs(x * 1000) % 10 == 5:
        assert cents(x, "EUR") == round_money(x, "EUR") + Decimal("0.01")
    else:
        assert cents(x, "EUR") == round_money(x, "EUR")
