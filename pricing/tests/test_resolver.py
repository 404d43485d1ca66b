from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.db import connection

from pricing import services
from pricing.models import EffectiveRate, Price
from pricing.resolver import NoPrice, PriceIndex, resolve_many, resolve_price
from pricing.services import OverrideSpec
from pricing.sql import EFFECTIVE_RATE_VIEW
from pricing.tests.conftest import T0
from pricing.tests.factories import ProductFactory

CHANGE = T0 + timedelta(days=40, hours=13, minutes=7)


@pytest.fixture
def price_change(server, make_price):
    make_price(server, "0.119")
    make_price(server, "0.099", valid_from=CHANGE)


def test_a_price_change_applies_from_its_exact_minute(org, server, price_change):
    before = resolve_price(organization=org, product=server, state="running", at=CHANGE - timedelta(microseconds=1))
    at = resolve_price(organization=org, product=server, state="running", at=CHANGE)
    assert (before.amount, at.amount) == (D("0.119"), D("0.099"))
    assert before.valid_to == CHANGE and at.valid_from == CHANGE
    assert before.price_id != at.price_id


def test_a_new_price_ends_the_open_one_and_leaves_its_amount_alone(server, price_change):
    old, new = Price.objects.filter(product=server).order_by("valid_from")
    assert (old.amount, old.valid_from, old.valid_to) == (D("0.119"), T0, CHANGE)
    assert (new.valid_from, new.valid_to) == (CHANGE, None)


def test_each_state_has_its_own_rate_and_transitional_states_are_free(org, server, make_price):
    make_price(server, "1.10")
    make_price(server, "0.12", state="stopped")
    make_price(server, "0.05", state="hibernated")
    at = T0 + timedelta(days=1)
    rates = {s: resolve_price(organization=org, product=server, state=s, at=at) for s in
             ("running", "stopped", "hibernated", "starting", "error")}
    assert {s: r.amount for s, r in rates.items()} == {
        "running": D("1.10"), "stopped": D("0.12"), "hibernated": D("0.05"), "starting": D("0"), "error": D("0")}
    assert rates["error"].source == "free"


def test_a_billable_state_without_a_price_is_an_error_not_free(org, server, make_price):
    make_price(server, "1.10")
    with pytest.raises(NoPrice):
        resolve_price(organization=org, product=server, state="stopped", at=T0 + timedelta(days=1))


def test_the_organisations_currency_picks_the_price(org, other_org, server, make_price):
    other_org.currency = "EUR"
    other_org.save()
    make_price(server, "1.00")
    make_price(server, "0.92", currency="EUR")
    at = T0 + timedelta(hours=1)
    assert resolve_price(organization=org, product=server, state="running", at=at).currency == "USD"
    eur = resolve_price(organization=other_org, product=server, state="running", at=at)
    assert (eur.amount, eur.currency) == (D("0.92"), "EUR")


@pytest.fixture
def contract(org, server, make_price):
    make_price(server, "2.00", monthly_cap=D("1000"))
    make_price(server, "0.20", state="stopped")
    gpu = ProductFactory(code="gpu")
    make_price(gpu, "10.00")
    return services.contract_create(
        organization=org, name="Deal", valid_from=T0 + timedelta(days=10), valid_to=T0 + timedelta(days=20),
        note="Signed 2025-12-20", committed_monthly_minimum=D("5000"), now=T0,
        prices=[OverrideSpec(product=server, kind="discount", discount_percent=D("25")),
                OverrideSpec(product=gpu, kind="absolute", state="running", amount=D("7.50"))],
    )


def test_contract_prices_win_while_the_contract_is_valid_and_expire_with_it(org, server, contract):
    def rate(at):
        r = resolve_price(organization=org, product=server, state="running", at=at)
        return r.amount, r.source

    assert rate(T0 + timedelta(days=10) - timedelta(minutes=1)) == (D("2.00"), "list")
    assert rate(T0 + timedelta(days=10)) == (D("1.50"), "contract")
    assert rate(T0 + timedelta(days=20)) == (D("2.00"), "list")


def test_a_discount_applies_to_the_cap_and_every_state_an_absolute_price_to_its_state(org, server, contract):
    at = T0 + timedelta(days=15)
    running = resolve_price(organization=org, product=server, state="running", at=at)
    stopped = resolve_price(organization=org, product=server, state="stopped", at=at)
    assert (running.monthly_cap, running.contract_id, running.list_amount) == (D("750"), contract.id, D("2.00"))
    assert (stopped.amount, stopped.source) == (D("0.15"), "contract")
    gpu = contract.prices.get(kind="absolute").product
    assert resolve_price(organization=org, product=gpu, state="running", at=at).amount == D("7.50")


def test_another_organisation_pays_list_price_during_the_contract(other_org, server, contract):
    r = resolve_price(organization=other_org, product=server, state="running", at=T0 + timedelta(days=15))
    assert (r.amount, r.source) == (D("2.00"), "list")


def test_bulk_resolution_gives_the_same_answers_as_single_lookups(org, other_org, server, contract):
    at = T0 + timedelta(days=15)
    triples = [(org.id, server.id, "running"), (other_org.id, server.id, "stopped"), (org.id, server.id, "error"),
               (org.id, server.id, "hibernated")] * 3
    bulk = resolve_many(triples, at=at)
    for (org_id, _product_id, state), answer in zip(triples[:3], bulk[:3], strict=True):
        organization = org if org_id == org.id else other_org
        assert answer == resolve_price(organization=organization, product=server, state=state, at=at)
    assert bulk[3] is None  # no hibernated price
    assert PriceIndex.load(at=at).resolve(org.id, server.id, "running").amount == D("1.50")


def test_bulk_index_is_built_by_a_fixed_number_of_queries(org, server, contract, django_assert_max_num_queries):
    triples = [(org.id, server.id, "running")] * 1000
    with django_assert_max_num_queries(6):
        resolve_many(triples, at=T0 + timedelta(days=15))


def _view_rows(org, product):
    return list(EffectiveRate.objects.filter(organization=org, product=product).order_by("state", "valid_from")
                .values_list("state", "unit", "rate", "monthly_cap", "valid_from", "valid_to", "source"))


def test_effective_rate_view_splits_the_list_price_around_the_contract(org, server, contract):
    start, end = T0 + timedelta(days=10), T0 + timedelta(days=20)
    assert _view_rows(org, server) == [
        ("running", "hour", D("2.00"), D("1000"), T0, start, "list"),
        ("running", "hour", D("1.50"), D("750"), start, end, "contract"),
        ("running", "hour", D("2.00"), D("1000"), end, None, "list"),
        ("stopped", "hour", D("0.20"), None, T0, start, "list"),
        ("stopped", "hour", D("0.15"), None, start, end, "contract"),
        ("stopped", "hour", D("0.20"), None, end, None, "list"),
    ]


def test_effective_rate_view_follows_a_price_change_for_organisations_without_contracts(other_org, server,
                                                                                         price_change):
    assert _view_rows(other_org, server) == [
        ("running", "hour", D("0.119"), None, T0, CHANGE, "list"),
        ("running", "hour", D("0.099"), None, CHANGE, None, "list"),
    ]


def test_effective_rate_view_agrees_with_the_resolver_at_every_boundary(org, server, contract, make_price):
    make_price(server, "1.80", valid_from=T0 + timedelta(days=15), now=T0)
    for day in (0, 9, 10, 14, 15, 19, 20, 30):
        at = T0 + timedelta(days=day)
        rows = list(EffectiveRate.objects.filter(organization=org, product=server, state="running",
                                                 valid_from__lte=at).exclude(valid_to__lte=at)
                    .values_list("rate", "source"))
        resolved = resolve_price(organization=org, product=server, state="running", at=at)
        assert rows == [(resolved.amount, resolved.source)], day


def test_spec_rejects_naive_times(org, server, make_price):
    make_price(server, "1.00")
    with pytest.raises(ValueError):
        resolve_price(organization=org, product=server, state="running", at=T0.replace(tzinfo=None))


def test_addon_is_priced_like_its_parent(org, make_price):
    addon = ProductFactory(code="ssd", kind="addon", billing_model="addon", vcpus=None)
    make_price(addon, "0.02", unit="hour")
    make_price(addon, "12.00", unit="month")
    at = T0 + timedelta(days=1)
    hourly = resolve_price(organization=org, product=addon, state="running", at=at, parent_billing_model="hourly")
    monthly = resolve_price(organization=org, product=addon, state="running", at=at, parent_billing_model="monthly")
    assert (hourly.amount, hourly.unit, monthly.amount, monthly.unit) == (D("0.02"), "hour", D("12.00"), "month")



def test_metering_can_join_the_view_in_one_statement(org, server, contract):
    """The join the view exists for: (organization, product, state) at one instant, in SQL."""
    at = T0 + timedelta(days=15)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT er.hourly_rate, er.source, er.contract_id FROM {EFFECTIVE_RATE_VIEW} er "
            "JOIN accounts_organization o ON o.id = er.organization_id "
            "WHERE o.id = %s AND er.product_id = %s AND er.state = %s AND er.unit = 'hour' "
            "AND er.valid_from <= %s AND (er.valid_to IS NULL OR er.valid_to > %s)",
            [org.id, server.id, "running", at, at])
        (rate, source, contract_id), = cursor.fetchall()
    assert (D(str(rate)), source, contract_id) == (D("1.50"), "contract", contract.id)
