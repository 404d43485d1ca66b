from datetime import timedelta
from decimal import Decimal as D

import pytest
import time_machine

from accounts.models import AuditLog
from pricing import services
from pricing.models import Contract, Price, ProductGroup
from pricing.quantity_pricing import Tier
from pricing.services import OverrideSpec
from pricing.tests.conftest import T0
from pricing.tests.factories import ProductFactory

NOW = T0 + timedelta(days=3)


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def priced(server, make_price):
    make_price(server, "0.12", monthly_cap=D("79.00"), min_billable_minutes=10)
    make_price(server, "0.01", state="stopped")
    return server


def test_customers_read_the_catalogue_and_list_prices(org_api, priced):
    products = org_api.get("/api/v1/products").json()["results"]
    assert [p["code"] for p in products] == ["cpu-4-16"]
    prices = org_api.get("/api/v1/prices", {"product": "cpu-4-16", "state": "running", "at": NOW.isoformat()}).json()
    assert [(p["amount"], p["unit"], p["monthly_cap"]) for p in prices["results"]] == [
        ("0.120000000000", "hour", "79.000000000000")]


def test_customers_cannot_write_the_price_book(org_api, priced):
    body = {"product": "cpu-4-16", "currency": "USD", "amount": "1.00", "valid_from": (NOW + timedelta(days=1)).isoformat()}
    assert org_api.post("/api/v1/prices", body, format="json").status_code == 403
    assert org_api.patch("/api/v1/products/cpu-4-16", {"name": "x"}, format="json").status_code == 403


def test_a_platform_key_schedules_a_price_that_ends_the_current_one(platform_api, priced):
    start = NOW + timedelta(days=1)
    response = platform_api.post("/api/v1/prices", {
        "product": "cpu-4-16", "currency": "USD", "amount": "0.10", "monthly_cap": "70.00",
        "valid_from": start.isoformat(),
    }, format="json", HTTP_IDEMPOTENCY_KEY="price-1")
    assert response.status_code == 201, response.content
    assert response.json()["amount"] == "0.100000000000"
    old = Price.objects.get(product=priced, state="running", amount=D("0.12"))
    assert old.valid_to == start
    assert AuditLog.objects.filter(action="price.created", actor_api_key__isnull=False).exists()


def test_a_tiered_price_with_two_unbounded_tiers_is_a_400_with_the_reason_and_writes_nothing(platform_api, db):
    ProductFactory(code="egress", kind="bandwidth", billing_model="overage", vcpus=None)
    response = platform_api.post("/api/v1/prices", {
        "product": "egress", "currency": "USD", "unit": "gb", "pricing_model": "graduated",
        "valid_from": (NOW + timedelta(hours=1)).isoformat(),
        "tiers": [{"up_to": None, "unit_amount": "0.01"}, {"up_to": None, "unit_amount": "0.005"}],
    }, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert "only the last tier may be unbounded" in error["fields"]["tiers"][0]
    assert not Price.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [({"amount": "-1"}, "amount"), ({"currency": "ABC"}, "currency"), ({"monthly_cap": "0.01"}, "monthly_cap"),
     ({"colour": "red"}, "colour"), ({"product": "nope"}, "product")],
)
def test_bad_price_input_is_a_400_naming_the_field(platform_api, priced, change, field):
    body = {"product": "cpu-4-16", "currency": "USD", "amount": "1.00",
            "valid_from": (NOW + timedelta(days=5)).isoformat(), **change}
    response = platform_api.post("/api/v1/prices", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_an_overlapping_price_is_a_400_naming_the_price_it_overlaps(platform_api, priced):
    start = NOW + timedelta(days=1)
    services.price_create(spec=services.PriceSpec(product=priced, currency="EUR", amount=D("1"), valid_from=start,
                                                  valid_to=start + timedelta(days=2)), now=NOW)
    response = platform_api.post("/api/v1/prices", {
        "product": "cpu-4-16", "currency": "EUR", "amount": "2", "valid_from": (start + timedelta(days=1)).isoformat(),
    }, format="json")
    assert response.status_code == 400
    assert "overlaps the €1.00 price" in response.json()["error"]["message"]


def test_a_price_in_force_cannot_be_deleted_only_ended(platform_api, priced):
    price = Price.objects.get(product=priced, state="running")
    assert platform_api.delete(f"/api/v1/prices/{price.pk}").status_code == 409
    end = (NOW + timedelta(days=10)).isoformat()
    response = platform_api.post(f"/api/v1/prices/{price.pk}/end", {"valid_to": end}, format="json")
    assert response.status_code == 200
    assert response.json()["valid_to"].startswith((NOW + timedelta(days=10)).date().isoformat())


def test_quote_for_a_short_run_bills_the_minimum_time(org_api, priced):
    response = org_api.post("/api/v1/quotes", {"product": "cpu-4-16", "duration_minutes": 3}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["amount"], body["rounded_amount"], body["source"]) == ("0.020000000000", "0.02", "list")
    assert "Minimum billable time" in body["breakdown"][0]["description"]


def test_quote_for_a_month_of_running_is_capped(org_api, priced):
    response = org_api.post("/api/v1/quotes", {
        "product": "cpu-4-16", "duration_minutes": 28 * 24 * 60, "at": "2026-02-01T00:00:00Z"}, format="json")
    body = response.json()
    assert body["amount"] == "79.000000000000"  # 672 h × 0.12 = 80.64 uncapped
    assert "capped at 79" in body["breakdown"][-1]["description"]


def test_quote_applies_the_organisations_contract(org, org_api, priced):
    services.contract_create(organization=org, name="Deal", valid_from=NOW, note="Signed", now=NOW,
                             prices=[OverrideSpec(product=priced, kind="discount", discount_percent=D("50"))])
    body = org_api.post("/api/v1/quotes", {"product": "cpu-4-16", "duration_minutes": 60}, format="json").json()
    assert (body["rate"], body["amount"], body["source"]) == ("0.060000000000", "0.060000000000", "contract")
    assert body["contract_id"] == Contract.objects.get().pk


def test_quote_for_overage_counts_units_above_the_allowance_through_the_tiers(org_api, make_price, db):
    egress = ProductFactory(code="egress", kind="bandwidth", billing_model="overage", vcpus=None)
    make_price(egress, "0", unit="gb", pricing_model="graduated", included_quantity=D("1000"),
               tiers=[Tier(D("10000"), D("0.01")), Tier(None, D("0.005"))])
    body = org_api.post("/api/v1/quotes", {"product": "egress", "quantity": "12500"}, format="json").json()
    # 11,500 GB above the allowance: 10,000 × 0.01 + 1,500 × 0.005
    assert body["amount"] == "107.500000000000"
    assert [line["amount"] for line in body["breakdown"]] == ["0.000000000000", "100.000000000000", "7.500000000000"]


def test_quote_in_yen_rounds_to_whole_yen(org, org_api, server, make_price):
    org.currency = "JPY"
    org.save()
    make_price(server, "17", currency="JPY")
    body = org_api.post("/api/v1/quotes", {"product": "cpu-4-16", "duration_minutes": 91}, format="json").json()
    assert (body["amount"], body["rounded_amount"]) == ("25.783333333333", "26")


def test_quote_for_another_organisation_is_a_404(org_api, other_org, priced):
    response = org_api.post("/api/v1/quotes", {"product": "cpu-4-16", "duration_minutes": 5,
                                               "organization": other_org.pk}, format="json")
    assert response.status_code == 404


def test_quote_without_a_quantity_or_duration_is_a_400(org_api, priced):
    response = org_api.post("/api/v1/quotes", {"product": "cpu-4-16"}, format="json")
    assert response.status_code == 400
    assert "quantity" in response.json()["error"]["message"]


def test_quote_without_a_price_is_a_404_saying_so(org_api, priced):
    response = org_api.post("/api/v1/quotes", {"product": "cpu-4-16", "state": "hibernated", "duration_minutes": 5},
                            format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "no_price"


def test_effective_prices_mark_contract_prices(org, org_api, priced):
    services.contract_create(organization=org, name="Deal", valid_from=NOW, note="Signed", now=NOW,
                             prices=[OverrideSpec(product=priced, state="running", kind="absolute", amount=D("0.09"))])
    rows = org_api.get("/api/v1/prices/effective").json()
    assert [(r["state"], r["rate"], r["list_rate"], r["source"]) for r in rows] == [
        ("running", "0.090000000000", "0.120000000000", "contract"),
        ("stopped", "0.010000000000", "0.010000000000", "list"),
    ]


def test_a_platform_key_creates_a_contract_and_a_contract_without_prices_is_refused(platform_api, org, priced):
    body = {"organization": org.pk, "name": "Deal", "valid_from": (NOW + timedelta(days=1)).isoformat(),
            "note": "Signed by both", "committed_monthly_minimum": "500.00", "prices": []}
    response = platform_api.post("/api/v1/contracts", body, format="json")
    assert response.status_code == 400
    assert "at least one price" in response.json()["error"]["message"]
    body["prices"] = [{"product": "cpu-4-16", "kind": "discount", "discount_percent": "12.5"}]
    response = platform_api.post("/api/v1/contracts", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["prices"][0]["discount_percent"] == "12.5000"


def test_product_code_cannot_be_changed_and_creation_is_audited(platform_api, db):
    ProductGroup.objects.create(slug="gpu", name="GPU")
    response = platform_api.post("/api/v1/products", {
        "code": "gpu-h200", "name": "H200", "group": "gpu", "kind": "server", "billing_model": "hourly",
        "vcpus": 32, "gpu_model": "NVIDIA H200", "gpu_count": 1}, format="json")
    assert response.status_code == 201, response.content
    assert platform_api.patch("/api/v1/products/gpu-h200", {"code": "x"}, format="json").status_code == 400
    assert AuditLog.objects.filter(action="product.created").exists()


@pytest.mark.parametrize(("field", "value"), [("gpu_count", 40_000), ("vcpus", 70_000), ("ram_gb", 3_000_000_000),
                                              ("local_disk_gb", 2 ** 31)])
def test_a_hardware_figure_beyond_its_column_is_a_400_naming_the_field(platform_api, db, field, value):
    ProductGroup.objects.create(slug="gpu", name="GPU")
    body = {"code": "gpu-big", "name": "Big", "group": "gpu", "kind": "server", "billing_model": "hourly",
            "gpu_model": "NVIDIA H200", field: value}
    response = platform_api.post("/api/v1/products", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]


def test_a_contract_override_for_every_state_reads_state_null(platform_api, org):
    from pricing.tests.factories import make_contract

    contract = make_contract(org)
    contract.prices.update(state="")
    response = platform_api.get(f"/api/v1/contracts/{contract.pk}")
    assert response.status_code == 200
    assert {p["state"] for p in response.json()["prices"]} == {None}


@pytest.mark.parametrize(("pricing_model", "amount"), [("volume", "101.000000000000"), ("graduated", "101.000000000000")])
def test_ten_thousand_units_under_a_tier_up_to_ten_thousand_pay_that_tier_through_the_api(
        platform_api, org_api, pricing_model, amount, db):
    ProductFactory(code="egress", kind="bandwidth", billing_model="overage", vcpus=None)
    created = platform_api.post("/api/v1/prices", {
        "product": "egress", "currency": "USD", "unit": "gb", "pricing_model": pricing_model,
        "valid_from": (NOW + timedelta(minutes=1)).isoformat(),
        "tiers": [{"up_to": "10000", "unit_amount": "0.01", "flat_amount": "1.00"},
                  {"up_to": None, "unit_amount": "0.005", "flat_amount": "20.00"}],
    }, format="json")
    assert created.status_code == 201, created.json()
    assert [(t["up_to"], t["unit_amount"]) for t in created.json()["tiers"]] == [
        ("10000.000000", "0.010000000000"), (None, "0.005000000000")]
    body = org_api.post("/api/v1/quotes", {"product": "egress", "quantity": "10000",
                                           "at": (NOW + timedelta(minutes=2)).isoformat()}, format="json").json()
    assert body["amount"] == amount  # 10,000 × 0.01 + 1.00: the first tier, as Stripe and Lago price it
    assert [line["description"] for line in body["breakdown"]] == ["Up to 10000"]
