"""Migration 0006 rewrites `[lower, upper)` tiers as inclusive `up_to` without moving any
quantity to another band: every amount on a grid of quantities (integers, halves, the
6-decimal neighbours of each bound) is what the old tiers charged. On a scratch database
migrated forward only as far as pricing 0005 needs (core/tests/scratch_db.py)."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from core.tests.scratch_db import ALIAS, scratch_database
from pricing.quantity_pricing import PriceTerms, Tier, price_quantity

BEFORE = [("pricing", "0005_flatter_effective_rate_view")]
AFTER = [("pricing", "0006_tiers_up_to_inclusive")]
STEP = D("0.000001")
OLD_TIERS = [  # (lower, upper, unit amount, flat fee), as main stored them
    (D("0"), D("10000"), D("0.01"), D("1.00")),
    (D("10000"), D("50000.5"), D("0.008"), D("2.00")),
    (D("50000.5"), None, D("0.005"), D("3.00")),
]


def old_amount(model: str, quantity: D) -> D:
    """The `[lower, upper)` arithmetic of pricing.quantity_pricing before 0006, frozen here."""
    if model == "volume":
        lower, upper, unit, flat = next(t for t in OLD_TIERS if t[1] is None or quantity < t[1])
        return quantity * unit + flat
    total = D(0)
    for lower, upper, unit, flat in OLD_TIERS:
        if quantity <= lower and not (quantity == 0 and lower == 0):
            break
        top = quantity if upper is None else min(quantity, upper)
        total += (top - lower) * unit + flat
    return total


def grid() -> list[D]:
    points = [D(0), STEP, D("0.5"), D(1), D("9999.5"), D("10000.5"), D("12345.678901"), D("50000"), D("50001"),
              D("100000"), D("100000.25")]
    for bound in (t[1] for t in OLD_TIERS if t[1] is not None):
        points += [bound - 2 * STEP, bound - STEP, bound, bound + STEP, bound - D(1), bound + D(1)]
    return points


@pytest.fixture
def scratch(db):
    with scratch_database() as database:
        yield database


def test_existing_tiers_migrate_to_up_to_with_every_amount_unchanged(scratch):
    old = scratch.migrate(BEFORE)
    group = old.get_model("pricing", "ProductGroup").objects.db_manager(ALIAS).create(slug="net", name="Network")
    product = old.get_model("pricing", "Product").objects.db_manager(ALIAS).create(code="egress", name="Egress", group=group,
                                                                 kind="bandwidth", billing_model="overage")
    Price, PriceTier = old.get_model("pricing", "Price"), old.get_model("pricing", "PriceTier")  # noqa: N806
    ids = {}
    for model, start in (("graduated", 1), ("volume", 2)):
        price = Price.objects.db_manager(ALIAS).create(product=product, currency="USD", state="running", unit="gb",
                                     pricing_model=model, valid_from=datetime(2026, start, 1, tzinfo=UTC),
                                     valid_to=datetime(2026, start + 1, 1, tzinfo=UTC))
        for lower, upper, unit, flat in OLD_TIERS:
            PriceTier.objects.db_manager(ALIAS).create(price=price, lower=lower, upper=upper, unit_amount=unit, flat_amount=flat)
        ids[model] = price.pk

    new = scratch.migrate(AFTER)
    NewTier = new.get_model("pricing", "PriceTier")  # noqa: N806
    for model, price_id in ids.items():
        rows = sorted(NewTier.objects.using(ALIAS).filter(price_id=price_id).values_list("up_to", "unit_amount", "flat_amount"),
                      key=lambda r: (r[0] is None, r[0] or 0))
        tiers = tuple(Tier(*r) for r in rows)
        expected_bounds = [D("10000"), D("50000.5"), None] if model == "graduated" else [
            D("9999.999999"), D("50000.499999"), None]
        assert [t.up_to for t in tiers] == expected_bounds, model
        for quantity in grid():
            assert price_quantity(PriceTerms(model, tiers=tiers), quantity).amount == old_amount(model, quantity), (
                model, quantity)

    back = scratch.migrate(BEFORE)  # and back: the old rows come back as they were
    rows = list(back.get_model("pricing", "PriceTier").objects.using(ALIAS).filter(price_id=ids["volume"]).order_by("lower")
                .values_list("lower", "upper", "unit_amount", "flat_amount"))
    assert rows == OLD_TIERS
