from datetime import timedelta
from decimal import Decimal as D

import pytest
import time_machine

from accounts.models import AuditLog
from pricing.models import Contract, Price, PriceTier
from pricing.tests.conftest import T0
from pricing.tests.factories import ProductFactory

NOW = T0 + timedelta(days=3)


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _management(prefix, total, initial=0):
    return {f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": str(initial),
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}


def _price_form(product, **overrides):
    start = NOW + timedelta(days=1)
    data = {"product": product.pk, "currency": "USD", "state": "running", "unit": "", "pricing_model": "per_unit",
            "amount": "1.00", "package_size": "", "included_quantity": "0", "monthly_cap": "",
            "min_billable_minutes": "0", "valid_from_0": start.strftime("%Y-%m-%d"),
            "valid_from_1": start.strftime("%H:%M:%S"), "valid_to_0": "", "valid_to_1": "", "note": "",
            **_management("tiers", 0)}
    data.update(overrides)
    return data


@pytest.fixture
def storage(db):
    return ProductFactory(code="block", kind="storage", billing_model="monthly", vcpus=None)


def test_staff_add_a_volume_price_with_tiers_inline_and_it_is_audited(admin_client, storage):
    data = _price_form(storage, unit="gb_month", pricing_model="volume", amount="0", **_management("tiers", 2))
    data.update({"tiers-0-up_to": "100", "tiers-0-unit_amount": "0.10",
                 "tiers-0-flat_amount": "0", "tiers-1-up_to": "",
                 "tiers-1-unit_amount": "0.08", "tiers-1-flat_amount": "1.00"})
    response = admin_client.post("/console/pricing/price/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    price = Price.objects.get()
    assert list(price.tiers.values_list("up_to", flat=True)) == [D("100"), None]
    assert AuditLog.objects.filter(action="price.created", actor__isnull=False).count() == 1


def test_a_tier_table_without_an_unbounded_last_tier_is_shown_to_staff_and_nothing_is_written(admin_client, storage):
    data = _price_form(storage, unit="gb_month", pricing_model="graduated", amount="0", **_management("tiers", 2))
    data.update({"tiers-0-up_to": "100", "tiers-0-unit_amount": "0.10",
                 "tiers-0-flat_amount": "0", "tiers-1-up_to": "150",
                 "tiers-1-unit_amount": "0.08", "tiers-1-flat_amount": "0"})
    response = admin_client.post("/console/pricing/price/add/", data)
    assert response.status_code == 200
    assert "leave its up to empty" in response.content.decode()
    assert not Price.objects.exists() and not PriceTier.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"amount": "-1"}, "greater than or equal to 0"),
     ({"currency": "XYZ"}, "not an ISO 4217"),
     ({"monthly_cap": "0.50"}, "below the hourly rate")],
)
def test_bad_prices_are_refused_in_the_console_with_a_readable_message(admin_client, server, overrides, message):
    response = admin_client.post("/console/pricing/price/add/", _price_form(server, **overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Price.objects.exists()


def test_an_overlapping_price_is_refused_in_the_console(admin_client, server, make_price):
    make_price(server, "2.00", valid_from=NOW + timedelta(days=1), valid_to=NOW + timedelta(days=5), now=NOW)
    response = admin_client.post("/console/pricing/price/add/", _price_form(server, valid_from_0=(
        NOW + timedelta(days=2)).strftime("%Y-%m-%d")))
    assert "overlaps the $2.00 price" in response.content.decode()
    assert Price.objects.count() == 1


def test_a_price_in_force_can_only_be_ended_and_the_end_is_audited(admin_client, server, make_price):
    price = make_price(server, "2.00")
    page = admin_client.get(f"/console/pricing/price/{price.pk}/change/").content.decode()
    assert 'name="amount"' not in page and 'name="valid_to_0"' in page
    end = NOW + timedelta(days=7)
    response = admin_client.post(f"/console/pricing/price/{price.pk}/change/", {
        "valid_to_0": end.strftime("%Y-%m-%d"), "valid_to_1": "00:00:00", **_management("tiers", 0)})
    assert response.status_code == 302
    price.refresh_from_db()
    assert (price.valid_to, price.amount) == (end, D("2.00"))
    assert AuditLog.objects.filter(action="price.ended", object_id=str(price.pk)).exists()
    past = admin_client.post(f"/console/pricing/price/{price.pk}/change/", {
        "valid_to_0": T0.strftime("%Y-%m-%d"), "valid_to_1": "12:00:00", **_management("tiers", 0)})
    assert "cannot be ended in the past" in past.content.decode()


def _contract_form(org, rows):
    start = NOW + timedelta(days=1)
    data = {"organization": org.pk, "name": "Deal", "valid_from_0": start.strftime("%Y-%m-%d"),
            "valid_from_1": "00:00:00", "valid_to_0": "", "valid_to_1": "", "committed_monthly_minimum": "100",
            "note": "Signed by both", **_management("prices", len(rows))}
    for i, row in enumerate(rows):
        data.update({f"prices-{i}-{k}": v for k, v in row.items()})
    return data


def test_a_contract_without_prices_is_refused_in_the_console(admin_client, org, server):
    response = admin_client.post("/console/pricing/contract/add/", _contract_form(org, []))
    assert "at least one price override" in response.content.decode()
    assert not Contract.objects.exists()


def test_staff_create_a_contract_with_its_overrides(admin_client, org, server):
    row = {"product": server.pk, "state": "", "kind": "discount", "amount": "", "discount_percent": "15",
           "monthly_cap": ""}
    response = admin_client.post("/console/pricing/contract/add/", _contract_form(org, [row]))
    assert response.status_code == 302, response.content.decode()[:3000]
    contract = Contract.objects.get()
    assert (contract.currency, contract.prices.get().discount_percent) == ("USD", D("15"))
    assert AuditLog.objects.filter(action="contract.created", organization=org).exists()


def test_the_console_lists_render(admin_client, server, make_price):
    make_price(server, "2.00")
    for url in ("/console/pricing/price/", "/console/pricing/product/", "/console/pricing/contract/",
                "/console/pricing/productgroup/", "/console/pricing/price/add/", "/console/pricing/contract/add/"):
        assert admin_client.get(url).status_code == 200, url
