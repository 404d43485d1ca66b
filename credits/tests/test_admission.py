"""Runway admission (credits.admission, POST /api/v1/admission): may organisation X start
product Y now? Figures worked by hand: a GPU at 6.00/h, a CPU at 0.50/h, a monthly IP at
3.00 a month (30-day month: 3.00 / 720 h = 0.004166666667/h), default policy one hour."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from accounts.models import BillingMode
from accounts.tests.factories import OrganizationFactory
from credits import services
from credits.admission import Reason, admit
from credits.models import AdmissionPolicy
from pricing.models import BillingModel
from usage.models import AccrualRate
from usage.tests.factories import ProductFactory, add_price

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 17, 10, 30, tzinfo=UTC)
LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def products():
    gpu, cpu = ProductFactory(code="gpu", name="GPU"), ProductFactory(code="cpu", name="CPU")
    ip = ProductFactory(code="ipv4", name="IPv4", billing_model=BillingModel.MONTHLY)
    add_price(gpu, "6.00", valid_from=LONG_AGO)
    add_price(cpu, "0.50", valid_from=LONG_AGO)
    add_price(ip, "3.00", valid_from=LONG_AGO)
    unpriced = ProductFactory(code="bare", name="Bare")
    retired = ProductFactory(code="old", name="Old", is_active=False)
    add_price(retired, "1.00", valid_from=LONG_AGO)
    return {"gpu": gpu, "cpu": cpu, "ip": ip, "bare": unpriced, "old": retired}


def funded(amount: str, *, burn: str = "0", **kwargs):
    org = OrganizationFactory(currency="USD", **kwargs)
    if Decimal(amount):
        services.ledger_post(organization=org, amount=Decimal(amount), kind="adjustment", reason="test")
    if Decimal(burn):
        AccrualRate.objects.create(chunk=0, organization=org, currency="USD", rate_per_hour=Decimal(burn), minute=0)
    return org


def test_allowed_with_the_runway_after_the_start(products):
    org = funded("20.00", burn="1.50")
    d = admit(organization=org, product=products["gpu"])
    assert d.allowed and d.reason is None
    assert (d.burn_rate_per_hour, d.added_per_hour, d.burn_rate_after) == (
        Decimal("1.50"), Decimal("6.000000000000"), Decimal("7.500000000000"))
    assert d.runway_hours_after == Decimal("2.6667")  # 20 / 7.5
    assert d.funds == Decimal("20.00") and d.min_runway_hours == Decimal("1")


def test_refused_when_the_new_burn_rate_leaves_less_than_the_policys_runway(products):
    org = funded("20.00", burn="1.50")
    three = admit(organization=org, product=products["gpu"], quantity=3)  # 19.50/h: 20 / 19.5 = 1.0256 h
    assert three.allowed and three.runway_hours_after == Decimal("1.0256")
    four = admit(organization=org, product=products["gpu"], quantity=4)  # 25.50/h: 0.7843 h
    assert not four.allowed and four.reason == Reason.INSUFFICIENT_RUNWAY
    assert four.runway_hours_after == Decimal("0.7843")
    assert four.message == "$20.00 of credit would last 47 minutes at $25.50/h; at least 1 hour is required."


def test_the_policy_per_organisation(products):
    org = funded("20.00", burn="1.50")
    assert admit(organization=org, product=products["gpu"]).allowed  # 2.67 h ≥ 1 h
    AdmissionPolicy.objects.create(organization=org, min_runway_hours=Decimal("3"))
    d = admit(organization=org, product=products["gpu"])
    assert (d.allowed, d.reason, d.min_runway_hours) == (False, Reason.INSUFFICIENT_RUNWAY, Decimal("3"))
    assert "would last 2.7 hours at $7.50/h; at least 3 hours is required" in d.message
    AdmissionPolicy.objects.filter(organization=org).update(enforce=False)
    d = admit(organization=org, product=products["gpu"], quantity=100)
    assert d.allowed and not d.checked and d.runway_hours_after == Decimal("0.0333")  # 20 / 601.5


def test_no_credit_and_promotional_credit_counts(products):
    assert admit(organization=funded("0"), product=products["cpu"]).reason == Reason.NO_CREDIT
    owing = funded("-2.00")
    assert admit(organization=owing, product=products["cpu"]).reason == Reason.NO_CREDIT
    promo = OrganizationFactory(currency="USD")
    services.promo_grant(organization=promo, amount=Decimal("5"), reason="welcome",
                         expires_at=datetime(2027, 1, 1, tzinfo=UTC))
    d = admit(organization=promo, product=products["cpu"])  # 5.00 of promotional credit at 0.50/h
    assert d.allowed and d.runway_hours_after == Decimal("10.0000")


def test_a_monthly_price_counts_its_hourly_share_of_this_month(products):
    d = admit(organization=funded("1.00"), product=products["ip"], quantity=2)
    assert d.added_per_hour == Decimal("0.008333333333")  # 2 × 3.00 / 720 h (November)
    assert d.allowed


def test_postpaid_against_the_credit_limit(products):
    unlimited = funded("-500.00", billing_mode=BillingMode.POSTPAID)
    d = admit(organization=unlimited, product=products["gpu"], quantity=50)
    assert d.allowed and d.runway_hours_after is None
    limited = funded("-95.00", burn="1.00", billing_mode=BillingMode.POSTPAID, credit_limit=Decimal("100"))
    d = admit(organization=limited, product=products["cpu"])  # 5.00 left at 1.50/h: 3.3 h
    assert d.allowed and d.funds == Decimal("5.00") and d.runway_hours_after == Decimal("3.3333")
    d = admit(organization=limited, product=products["gpu"])  # 5.00 at 7.00/h: 43 minutes
    assert d.reason == Reason.INSUFFICIENT_CREDIT_LIMIT and "42 minutes" in d.message
    over = funded("-100.00", billing_mode=BillingMode.POSTPAID, credit_limit=Decimal("100"))
    assert admit(organization=over, product=products["cpu"]).reason == Reason.CREDIT_LIMIT_REACHED


def test_what_cannot_be_billed_or_is_gone_is_refused(products):
    org = funded("100.00")
    assert admit(organization=org, product=products["bare"]).reason == Reason.NO_PRICE
    assert admit(organization=org, product=products["old"]).reason == Reason.PRODUCT_INACTIVE
    inactive = funded("100.00", is_active=False)
    assert admit(organization=inactive, product=products["cpu"]).reason == Reason.ORGANIZATION_INACTIVE


def test_the_api_answers_as_documented_for_platform_keys_only(products, make_key, api):
    import jsonschema
    from drf_spectacular.generators import SchemaGenerator

    from usage.tests.test_api import _documented

    org = funded("20.00", burn="1.50")
    platform = api(make_key(None, ["admission:check"]))
    r = platform.post("/api/v1/admission", {"organization": org.pk, "product": "gpu", "quantity": 4}, format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    jsonschema.validate(body, _documented(SchemaGenerator().get_schema(request=None, public=True),
                                          "/api/v1/admission", "post", "200"))
    assert (body["allowed"], body["reason"], body["runway_hours_after"]) == (False, "insufficient_runway", "0.7843")
    assert body["burn_rate_after"] == "25.500000000000" and body["added_per_hour"] == "24.000000000000"
    for bad, field in (({"organization": org.pk, "product": "nope"}, "product"),
                       ({"organization": org.pk, "product": "gpu", "quantity": 0}, "quantity"),
                       ({"organization": org.pk, "product": "gpu", "quantity": "1e9"}, "quantity"),
                       ({"product": "gpu"}, "organization"),
                       ({"organization": org.pk, "product": "gpu", "extra": 1}, "extra")):
        r = platform.post("/api/v1/admission", bad, format="json")
        assert r.status_code == 400 and field in r.json()["error"]["fields"], (bad, r.content)
    assert platform.post("/api/v1/admission", {"organization": 10**9, "product": "gpu"},
                         format="json").status_code == 404
    customer = api(make_key(org))
    assert customer.post("/api/v1/admission", {"organization": org.pk, "product": "gpu"},
                         format="json").status_code == 403


def test_a_contract_s_price_is_the_one_added_and_an_add_on_counts_its_hourly_price(products):
    """The price is the organisation's as metering rates it: the contract's override of the
    list price while the contract holds (25 % off 6.00 = 4.50 per GPU), and an add-on's
    hourly price beside its monthly one."""
    from pricing import services as pricing_services
    from pricing.services import OverrideSpec

    org = funded("100.00")
    pricing_services.contract_create(
        organization=org, name="Deal", valid_from=LONG_AGO, valid_to=None, note="Signed 2024-12-20, copy in the CRM", now=LONG_AGO,
        committed_monthly_minimum=Decimal("0"),
        prices=[OverrideSpec(product=products["gpu"], kind="discount", discount_percent=Decimal("25"))])
    d = admit(organization=org, product=products["gpu"], quantity=2)
    assert d.allowed and d.added_per_hour == Decimal("9.000000000000")
    other = funded("100.00")
    assert admit(organization=other, product=products["gpu"], quantity=2).added_per_hour == Decimal("12.000000000000")

    ssd = ProductFactory(code="ssd", name="SSD", kind="addon", billing_model=BillingModel.ADDON, vcpus=None)
    add_price(ssd, "0.02", valid_from=LONG_AGO)
    add_price(ssd, "12.00", unit="month", valid_from=LONG_AGO)
    assert admit(organization=other, product=ssd).added_per_hour == Decimal("0.020000000000")
