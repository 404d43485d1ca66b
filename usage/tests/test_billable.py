"""Measured against billable (usage.billable), on a history metered and rolled up as
production does, with figures worked out by hand:

gpu-1, GPU at 6.00/h running with a 60-minute minimum, no price when stopped, a backup
add-on at 0.30/h (running only) attached at 11:00:
  1 Nov 09:55 provisioning, 10:00 running, 10:20 stopped, 12:00 error, 12:10 running,
  14:10 stopped until the cut-off (3 Nov 00:00).
  measured: provisioning 5, running 20 + 120 = 140, stopped 100 + 2,030 = 2,130, error 10;
  billable running 140 (14.00) + minimum 40 minutes (4.00) for the 20-minute run;
  backup attached 2,220 minutes (11:00 to the cut-off), billable 120 (0.60).
capped-1, 1.20/h capped at 10.00 a month, running from 1 Nov 00:00: 2,880 minutes,
  57.60 before the cap, 10.00 billed, the cap saved 47.60.
gpu-2, GPU from 2 Nov 15:00, stopped 15:10 (a 50-minute minimum, rated when 16:00 closes);
  then a late stop at 15:05 arrives: the spans and that minimum are reversed and rated
  again, running 5 minutes (0.50) with a 55-minute minimum (5.50), net, once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from accounts.models import BillingMode
from accounts.tests.factories import OrganizationFactory
from pricing.models import BillingModel, ProductKind, ResourceState
from pricing.tests.factories import ProductFactory
from usage import metering, services
from usage.billable import MonthError, measured_vs_billable, parse_month
from usage.models import StateSource, UsageDaily
from usage.rollups import rollup_pending
from usage.tests.factories import add_price

pytestmark = pytest.mark.django_db
LONG_AGO = datetime.fromisoformat("2025-01-01T00:00:00+00:00")
NOV = datetime.fromisoformat("2026-11-01T00:00:00+00:00").date()
CUTOFF = datetime.fromisoformat("2026-11-03T00:00:00+00:00")


def utc(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.fromisoformat(f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00+00:00")


def at(moment: datetime):
    return time_machine.travel(moment + timedelta(minutes=1), tick=False)


def meter_to(until: datetime) -> None:
    with at(until):
        metering.meter_pass(until=until)
        rollup_pending()


@pytest.fixture
def world(settings):
    settings.USAGE_METERING_CHUNKS = 1
    # Postpaid: a prepaid organisation without credit would be hibernated by the credit
    # sync (it runs where commits happen, e.g. the browser test's live server).
    org = OrganizationFactory(currency="USD", billing_mode=BillingMode.POSTPAID, credit_limit=Decimal(10_000))
    gpu = ProductFactory(code="gpu", name="GPU")
    capped = ProductFactory(code="capped", name="Capped")
    backup = ProductFactory(code="backup", name="Backup", kind=ProductKind.ADDON, billing_model=BillingModel.ADDON)
    add_price(gpu, "6.00", valid_from=LONG_AGO, min_billable_minutes=60)
    add_price(capped, "1.20", valid_from=LONG_AGO, monthly_cap="10.00")
    add_price(backup, "0.30", valid_from=LONG_AGO)

    def create(name, product, when, *, running_at=None):
        with at(when):
            r = services.resource_create(organization=org, external_id=name, product=product, at=when,
                                         source=StateSource.EVENT)
        return change(r, ResourceState.RUNNING, running_at or when)

    def change(resource, state, when):
        with at(when):
            return services.resource_change_state(resource=resource, state=state, at=when, source=StateSource.EVENT)

    gpu1 = create("gpu-1", gpu, utc(1, 9, 55), running_at=utc(1, 10))
    change(gpu1, ResourceState.STOPPED, utc(1, 10, 20))
    with at(utc(1, 11)):
        services.addon_attach_points(resource_id=gpu1.pk, organization_id=org.pk, product_id=backup.pk, at=utc(1, 11))
    change(gpu1, ResourceState.ERROR, utc(1, 12))
    change(gpu1, ResourceState.RUNNING, utc(1, 12, 10))
    change(gpu1, ResourceState.STOPPED, utc(1, 14, 10))
    capped1 = create("capped-1", capped, utc(1))
    gpu2 = create("gpu-2", gpu, utc(2, 15))
    change(gpu2, ResourceState.STOPPED, utc(2, 15, 10))
    meter_to(utc(2, 16))
    change(gpu2, ResourceState.STOPPED, utc(2, 15, 5))  # late: 16:00 is stored
    meter_to(CUTOFF)
    return {"org": org, "gpu1": gpu1, "capped1": capped1, "gpu2": gpu2}


def lines(result):
    return {s.state: (s.measured_minutes, s.billable_minutes, s.excluded_minutes, s.amount, s.reason)
            for s in result.states}


def test_measured_billable_excluded_and_why_per_state(world):
    with at(CUTOFF):
        r = measured_vs_billable(resource=world["gpu1"], month=NOV)
    assert r.end == CUTOFF and not r.complete
    assert lines(r) == {
        "running": (140, 140, 0, Decimal("18.000000000000"), ""),
        "stopped": (2130, 0, 2130, Decimal("0"), "No price for this state: free."),
        "provisioning": (5, 0, 5, Decimal("0"), "Transitional state: not billed."),
        "error": (10, 0, 10, Decimal("0"), "Error state: not billed."),
    }
    assert (r.measured_minutes, r.billable_minutes, r.excluded_minutes) == (2285, 140, 2145)
    assert (r.minimum_minutes, r.minimum_amount) == (40, Decimal("4.000000000000"))
    assert [(a.product.code, a.attached_minutes, a.billable_minutes, a.amount) for a in r.addons] == [
        ("backup", 2220, 120, Decimal("0.600000000000"))]
    assert r.amount == Decimal("18.600000000000")
    assert r.cap_saved == 0


def test_what_the_monthly_cap_saved(world):
    with at(CUTOFF):
        r = measured_vs_billable(resource=world["capped1"], month=NOV)
    assert lines(r) == {"running": (2880, 2880, 0, Decimal("10.000000000000"), "")}
    assert r.cap_saved == Decimal("47.600000000000")
    assert r.minimum_minutes == 0


def test_a_minimum_reversed_by_a_late_event_counts_once_net(world):
    with at(CUTOFF):
        r = measured_vs_billable(resource=world["gpu2"], month=NOV)
    assert lines(r)["running"] == (5, 5, 0, Decimal("6.000000000000"), "")  # 0.50 + the 5.50 minimum
    assert lines(r)["stopped"][0] == 535  # 15:05 to midnight
    assert (r.minimum_minutes, r.minimum_amount) == (55, Decimal("5.500000000000"))
    # The rollup itself carries the net minimum: 50 minutes rated, reversed, 55 rated again.
    day = UsageDaily.objects.get(resource=world["gpu2"], state="running")
    assert (day.minutes, day.minimum_minutes, day.amount, day.minimum_amount) == (
        60, 55, Decimal("6.000000000000"), Decimal("5.500000000000"))


def test_a_month_before_the_resource_and_the_whole_month_once_complete(world):
    with at(CUTOFF):
        october = measured_vs_billable(resource=world["gpu1"], month=NOV.replace(month=10))
    assert october.states == [] and october.addons == [] and october.complete


def test_month_parameter():
    today = NOV.replace(day=17)
    assert parse_month("", today=today) == NOV
    assert parse_month("2026-10", today=today) == NOV.replace(month=10)
    for bad in ("2026-13", "november", "2026-12"):
        with pytest.raises(MonthError):
            parse_month(bad, today=today)


def test_the_api_answers_it_as_documented_and_only_to_the_resources_organisation(world, make_key, api):
    import jsonschema
    from drf_spectacular.generators import SchemaGenerator

    from usage.tests.test_api import _documented

    own = api(make_key(world["org"], ["usage:read"]))
    url = f"/api/v1/resources/{world['gpu1'].pk}/billable"
    with at(CUTOFF):
        response = own.get(url, {"month": "2026-11"})
        assert response.status_code == 200, response.content
        body = response.json()
        schema = SchemaGenerator().get_schema(request=None, public=True)
        jsonschema.validate(body, _documented(schema, "/api/v1/resources/{id}/billable", "get", "200"))
        assert (body["measured_minutes"], body["billable_minutes"], body["excluded_minutes"]) == (2285, 140, 2145)
        assert body["minimum_amount"] == "4.000000000000" and body["amount"] == "18.600000000000"
        assert body["states"][1] == {"state": "stopped", "measured_minutes": 2130, "billable_minutes": 0,
                                     "excluded_minutes": 2130, "amount": "0.000000000000",
                                     "reason": "No price for this state: free."}
        assert body["addons"][0]["product"] == "backup"
        for bad in ("2026-13", "2027-01", "nov"):
            r = own.get(url, {"month": bad})
            assert r.status_code == 400 and "month" in r.json()["error"]["fields"], r.content
        assert own.get(url, {"mnth": "2026-11"}).status_code == 400  # a typo is an error, not this month
        other = api(make_key(OrganizationFactory(), ["usage:read"]))
        assert other.get(url).status_code == 404
        assert api(make_key(world["org"], ["billing:read"])).get(url).status_code == 403


def test_the_portal_resource_page_shows_it(world, client, make_member):
    member = make_member(world["org"], "viewer").user
    client.force_login(member)
    with at(CUTOFF):
        page = client.get(f"/usage/resources/{world['gpu1'].pk}/?month=2026-11")
        assert page.status_code == 200
        html = page.content.decode()
        for text in ("Measured vs billable", "38 h 5 min", "2 h 20 min", "Error state: not billed.",
                     "No price for this state: free.", "40 min added, $4.00", "$18.60", "Backup", "37 h"):
            assert text in html, text
        capped = client.get(f"/usage/resources/{world['capped1'].pk}/").content.decode()
        assert "saved you $47.60" in capped
        assert client.get(f"/usage/resources/{world['gpu1'].pk}/?month=garbage").status_code == 400
