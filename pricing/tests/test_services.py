from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.db import IntegrityError, transaction

from accounts.models import AuditLog
from core.errors import Conflict, DomainError
from pricing import services
from pricing.models import Contract, Price, PriceTier
from pricing.quantity_pricing import Tier
from pricing.services import OverrideSpec, PriceSpec
from pricing.tests.conftest import T0
from pricing.tests.factories import ProductFactory


def _spec(product, amount="1.00", **kwargs):
    kwargs.setdefault("valid_from", T0)
    return PriceSpec(product=product, currency=kwargs.pop("currency", "USD"), amount=D(amount), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        (dict(amount="-0.01"), "amount", "cannot be negative"),
        (dict(currency="XYZ"), "currency", "not an ISO 4217"),
        (dict(currency="usd"), "currency", "not an ISO 4217"),
        (dict(amount="2.00", monthly_cap=D("1.50")), "monthly_cap", "below the hourly rate"),
        (dict(unit="month"), "unit", "priced per hour"),
        (dict(pricing_model="graduated"), "pricing_model", "per-unit"),
        (dict(valid_to=T0), "valid_to", "end after it starts"),
        (dict(valid_from=T0 + timedelta(seconds=30)), "valid_from", "whole minute"),
        (dict(state="asleep"), "state", "Unknown resource state"),
    ],
)
def test_bad_prices_are_refused_with_a_message_and_nothing_written(server, kwargs, field, message):
    with pytest.raises(DomainError, match=message) as info:
        services.price_create(spec=_spec(server, **kwargs), now=T0)
    assert info.value.field == field
    assert not Price.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="price.").exists()


def test_bad_tier_tables_are_refused_and_no_price_is_half_written(db):
    storage = ProductFactory(code="storage", kind="storage", billing_model="monthly", vcpus=None)
    tiers = [Tier(D("100"), D("0.10")), Tier(D("100"), D("0.05")), Tier(None, D("0.05"))]
    with pytest.raises(DomainError, match="must go higher than the one before"):
        services.price_create(spec=_spec(storage, "0", unit="gb_month", pricing_model="graduated", tiers=tiers),
                              now=T0)
    assert not Price.objects.exists() and not PriceTier.objects.exists()


def test_a_tiered_price_is_written_with_its_tiers_and_audited(db):
    storage = ProductFactory(code="storage", kind="storage", billing_model="monthly", vcpus=None)
    tiers = [Tier(None, D("0.05")), Tier(D("100"), D("0.10"), D("1.00"))]
    price = services.price_create(spec=_spec(storage, "0", unit="gb_month", pricing_model="volume", tiers=tiers),
                                  now=T0)
    assert list(price.tiers.values_list("up_to", "unit_amount", "flat_amount")) == [
        (D("100"), D("0.10"), D("1.00")), (None, D("0.05"), D("0"))]
    assert AuditLog.objects.get(action="price.created").object_id == str(price.pk)


def test_a_price_cannot_start_in_the_past(server):
    with pytest.raises(DomainError, match="cannot start in the past"):
        services.price_create(spec=_spec(server), now=T0 + timedelta(minutes=1))


def test_overlapping_effective_dates_are_refused(server, make_price):
    make_price(server, "1.00", valid_to=T0 + timedelta(days=10))
    with pytest.raises(DomainError, match=r"overlaps the \$1.00 price"):
        services.price_create(spec=_spec(server, "2.00", valid_from=T0 + timedelta(days=5)), now=T0)
    make_price(server, "2.00", valid_from=T0 + timedelta(days=10), now=T0)  # touching is fine: half-open


def test_the_database_itself_refuses_overlapping_prices(server, make_price):
    first = make_price(server, "1.00")
    with pytest.raises(IntegrityError, match="price_no_overlap"), transaction.atomic():
        Price.objects.create(product=server, currency="USD", state="running", unit="hour", amount=D("2"),
                             valid_from=first.valid_from + timedelta(days=1))


def test_ending_a_price_in_the_past_is_refused_and_in_the_future_is_audited(server, make_price):
    price = make_price(server, "1.00")
    now = T0 + timedelta(days=3)
    with pytest.raises(DomainError, match="in the past"):
        services.price_end(price=price, at=T0 + timedelta(days=2), now=now)
    services.price_end(price=price, at=now + timedelta(days=1), now=now)
    price.refresh_from_db()
    assert price.valid_to == now + timedelta(days=1)
    assert AuditLog.objects.filter(action="price.ended", object_id=str(price.pk)).count() == 1


def test_a_price_in_force_cannot_be_rescheduled_or_cancelled(server, make_price):
    price = make_price(server, "1.00")
    with pytest.raises(Conflict):
        services.price_reschedule(price=price, spec=_spec(server, "0.50"), now=T0 + timedelta(minutes=1))
    with pytest.raises(Conflict):
        services.price_cancel(price=price, now=T0 + timedelta(minutes=1))


def test_a_scheduled_price_can_be_rescheduled_then_cancelled(server, make_price):
    later = T0 + timedelta(days=30)
    price = make_price(server, "1.00", valid_from=later, now=T0)
    services.price_reschedule(price=price, spec=_spec(server, "0.90", valid_from=later + timedelta(days=1)), now=T0)
    price.refresh_from_db()
    assert (price.amount, price.valid_from) == (D("0.90"), later + timedelta(days=1))
    services.price_cancel(price=price, now=T0)
    assert not Price.objects.exists()
    assert AuditLog.objects.filter(action="price.cancelled").exists()


def _contract(org, product, **kwargs):
    defaults = dict(organization=org, name="Deal", valid_from=T0, note="Signed", now=T0,
                    prices=[OverrideSpec(product=product, kind="discount", discount_percent=D("10"))])
    return services.contract_create(**{**defaults, **kwargs})


def test_a_contract_without_prices_is_refused(org, server):
    with pytest.raises(DomainError, match="at least one price override"):
        _contract(org, server, prices=[])
    assert not Contract.objects.exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (dict(kind="discount", discount_percent=D("120")), "cannot exceed 100%"),
        (dict(kind="absolute", amount=D("-1")), "cannot be negative"),
        (dict(kind="absolute", amount=D("2"), monthly_cap=D("1")), "below the hourly rate"),
        (dict(kind="cheaper"), "absolute price or a percentage"),
    ],
)
def test_bad_contract_prices_are_refused(org, server, override, message):
    with pytest.raises(DomainError, match=message):
        _contract(org, server, prices=[OverrideSpec(product=server, **override)])
    assert not Contract.objects.exists()


def test_overlapping_contracts_of_one_organisation_are_refused(org, other_org, server):
    _contract(org, server, valid_to=T0 + timedelta(days=30))
    with pytest.raises(DomainError, match="overlaps the contract"):
        _contract(org, server, valid_from=T0 + timedelta(days=29))
    _contract(org, server, valid_from=T0 + timedelta(days=30))
    _contract(other_org, server)


def test_a_contract_needs_a_note_of_the_agreement(org, server):
    with pytest.raises(DomainError, match="Note what was agreed"):
        _contract(org, server, note="  ")


def test_a_contract_is_in_the_organisations_currency_and_audited(org, server):
    contract = _contract(org, server, committed_monthly_minimum=D("1000"))
    assert contract.currency == org.currency
    entry = AuditLog.objects.get(action="contract.created")
    assert entry.organization == org
    assert entry.changes["prices"][0]["discount_percent"] == "10"
