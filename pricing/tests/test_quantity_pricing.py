from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import DomainError
from pricing.quantity_pricing import PriceTerms, Tier, price_quantity, validate_tiers

TIERS = (
    Tier(up_to=D("100"), unit_amount=D("0.10"), flat_amount=D("5.00")),
    Tier(up_to=D("1000"), unit_amount=D("0.08"), flat_amount=D("2.00")),
    Tier(up_to=None, unit_amount=D("0.05")),
)
# As Stripe's docs and Lago's volume/graduated charge models write them: "up to 10,000".
UP_TO_10000 = (
    Tier(up_to=D("10000"), unit_amount=D("0.01"), flat_amount=D("1.00")),
    Tier(up_to=None, unit_amount=D("0.005"), flat_amount=D("20.00")),
)


def test_flat_price_is_the_amount_whatever_the_quantity():
    assert price_quantity(PriceTerms("flat", D("49.00")), D("7")).amount == D("49.00")


def test_per_unit_price_multiplies_exactly():
    assert price_quantity(PriceTerms("per_unit", D("0.0343333")), D("3")).amount == D("0.1029999")


def test_same_tiers_give_different_totals_under_graduated_and_volume():
    graduated = price_quantity(PriceTerms("graduated", tiers=TIERS), D("150"))
    volume = price_quantity(PriceTerms("volume", tiers=TIERS), D("150"))
    # 100 × 0.10 + 5.00 + 50 × 0.08 + 2.00
    assert graduated.amount == D("21.00")
    # every unit at the second band's rate, plus its flat fee: 150 × 0.08 + 2.00
    assert volume.amount == D("14.00")


def test_graduated_breakdown_lists_each_band_with_its_flat_fee():
    result = price_quantity(PriceTerms("graduated", tiers=TIERS), D("1500"))
    assert [(line.quantity, line.unit_amount, line.flat_amount, line.amount) for line in result.breakdown] == [
        (D("100"), D("0.10"), D("5.00"), D("15.00")),
        (D("900"), D("0.08"), D("2.00"), D("74.00")),
        (D("500"), D("0.05"), D("0"), D("25.00")),
    ]
    assert result.amount == D("114.00")


def test_ten_thousand_units_under_a_volume_tier_up_to_ten_thousand_pay_that_tiers_price():
    result = price_quantity(PriceTerms("volume", tiers=UP_TO_10000), D("10000"))
    assert result.amount == D("101.00")  # 10,000 × 0.01 + 1.00, not 10,000 × 0.005 + 20.00
    assert (result.breakdown[0].above, result.breakdown[0].up_to) == (None, D("10000"))
    assert result.breakdown[0].description == "Up to 10000"


def test_a_fraction_above_the_bound_of_a_volume_tier_is_in_the_next_tier():
    assert price_quantity(PriceTerms("volume", tiers=UP_TO_10000), D("10000.5")).amount == D("70.0025")
    assert price_quantity(PriceTerms("volume", tiers=UP_TO_10000), D("9999.5")).amount == D("100.995")
    assert price_quantity(PriceTerms("volume", tiers=UP_TO_10000), D("10000.000001")).amount == D("70.000000005")


def test_ten_thousand_units_under_a_graduated_tier_up_to_ten_thousand_stay_in_that_tier():
    result = price_quantity(PriceTerms("graduated", tiers=UP_TO_10000), D("10000"))
    assert result.amount == D("101.00")  # the next tier's flat fee is not reached
    assert [(line.quantity, line.up_to) for line in result.breakdown] == [(D("10000"), D("10000"))]
    beyond = price_quantity(PriceTerms("graduated", tiers=UP_TO_10000), D("10000.5"))
    assert beyond.amount == D("101.00") + D("0.5") * D("0.005") + D("20.00")
    assert [line.description for line in beyond.breakdown] == ["Up to 10000", "Above 10000"]


def test_zero_units_under_graduated_pay_the_first_flat_fee_as_a_minimum():
    assert price_quantity(PriceTerms("graduated", tiers=TIERS), D("0")).amount == D("5.00")


def test_package_rounds_started_packages_up():
    terms = PriceTerms("package", D("4.00"), package_size=D("1000"))
    assert price_quantity(terms, D("1000")).amount == D("4.00")
    assert price_quantity(terms, D("1000.000001")).amount == D("8.00")
    assert price_quantity(terms, D("0")).amount == D("0.00")
    assert price_quantity(terms, D("2500")).breakdown[0].quantity == D("3")


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ((Tier(D("10"), D("1")), Tier(D("10"), D("1")), Tier(None, D("1"))), "must go higher than the one before"),
        ((Tier(D("10"), D("1")), Tier(D("5"), D("1")), Tier(None, D("1"))), "must go higher than the one before"),
        ((Tier(None, D("1")), Tier(None, D("1"))), "only the last tier may be unbounded"),
        ((Tier(D("10"), D("1")),), "leave its up to empty"),
        ((Tier(D("-1"), D("1")), Tier(None, D("1"))), "cannot be negative"),
        ((Tier(None, D("-1")),), "cannot be negative"),
        ((), "at least one tier"),
    ],
)
def test_bad_tier_tables_are_refused_with_a_reason(tiers, message):
    with pytest.raises(DomainError, match=message):
        validate_tiers(tiers)


def test_float_quantities_are_refused():
    with pytest.raises(TypeError):
        price_quantity(PriceTerms("per_unit", D("1")), 1.5)


def test_negative_quantities_are_refused():
    with pytest.raises(DomainError):
        price_quantity(PriceTerms("per_unit", D("1")), D("-1"))


# --- properties ----------------------------------------------------------------

quantities = st.decimals(min_value=D("0"), max_value=D("100000"), places=3, allow_nan=False, allow_infinity=False)


@given(quantities)
def test_graduated_total_is_the_sum_of_its_breakdown_and_never_falls_as_quantity_grows(quantity):
    terms = PriceTerms("graduated", tiers=TIERS)
    result = price_quantity(terms, quantity)
    assert result.amount == sum((line.amount for line in result.breakdown), D(0))
    assert sum((line.quantity for line in result.breakdown), D(0)) == quantity
    assert price_quantity(terms, quantity + D("0.001")).amount >= result.amount


@given(quantities)
def test_volume_prices_every_unit_at_one_band(quantity):
    result = price_quantity(PriceTerms("volume", tiers=TIERS), quantity)
    (line,) = result.breakdown
    assert (line.above is None or line.above < quantity) and (line.up_to is None or quantity <= line.up_to)
    assert result.amount == quantity * line.unit_amount + line.flat_amount


@given(quantities, st.integers(min_value=1, max_value=5000))
def test_package_never_charges_for_less_than_the_quantity_nor_a_whole_package_more(quantity, size):
    result = price_quantity(PriceTerms("package", D("4.00"), package_size=D(size)), quantity)
    packages = result.breakdown[0].quantity
    assert packages * size >= quantity > (packages - 1) * size or (quantity == 0 and packages == 0)
