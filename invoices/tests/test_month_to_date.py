"""One month-to-date figure: every page and endpoint that says what this month has cost
so far shows the interim invoice's total at one cut-off, labelled with it. The dashboard
once showed "Usage this month $799.51" (rated usage to the metering watermark) beside
"This month so far $799.08" (the interim invoice to "now"): the later cut-off with the
lower number."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from usage import metering, rollups
from usage.ingest import events_ingest
from usage.tests.factories import ProductFactory, add_price

pytestmark = pytest.mark.django_db


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 10, hour, minute, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(at(12, 35), tick=False) as traveller:
        yield traveller


@pytest.fixture
def metered_with_a_run_not_rolled_up(org, clock):
    """A server at $1.20/h from 10:17; metered and rolled up to 12:00, then metered to 12:32
    by a run the rollup has not reached yet (as at 06:32 in the report)."""
    product = ProductFactory(code="cpu-4", name="CPU 4")
    add_price(product, "1.20", valid_from=datetime(2026, 1, 1, tzinfo=UTC))
    events_ingest(items=[
        {"id": "e1", "type": "created", "resource": "srv-1", "timestamp": at(10, 0).isoformat(),
         "organization": org.pk, "product": "cpu-4", "name": "web-1"},
        {"id": "e2", "type": "started", "resource": "srv-1", "timestamp": at(10, 17).isoformat()},
    ])
    metering.meter_pass(until=at(12, 0))
    rollups.rollup_pending()
    metering.meter_pass(until=at(12, 32))
    return product


def _figures(page: str) -> list[tuple[str, str]]:
    totals = re.findall(r'class="[^"]*\bmtd-total\b[^"]*">([^<]+)<', page)
    as_ofs = re.findall(r'class="mtd-as-of">([^<]+)<', page)
    assert totals and len(totals) == len(as_ofs), page
    return list(zip(totals, as_ofs, strict=True))


def test_every_page_and_endpoint_shows_one_month_to_date_figure_at_one_cut_off(
        org, owner, client, org_api, metered_with_a_run_not_rolled_up):
    client.force_login(owner)
    # Rolled up to 12:00: 103 minutes at $0.02. The 32 minutes after it are metered but not
    # in the rollups the invoice reads yet, so the figure is cut off at 12:00 everywhere.
    expected = ("$2.06", "to 2026-03-10 12:00 UTC")
    page = client.get("/").content.decode()
    assert "$2.70" not in page  # main: "Usage this month $2.70, metered to 12:32" beside "$2.06, to 12:35"
    assert _figures(page) == [expected, expected]  # "Usage this month" and "This month so far"
    assert _figures(client.get("/usage/").content.decode()) == [expected]
    assert _figures(client.get("/invoices/current").content.decode()) == [expected]

    mtd = org_api.get("/api/v1/usage/month-to-date").json()
    assert (mtd["amount"], mtd["as_of"], mtd["metered_until"], mtd["currency"]) == (
        "2.060000000000", "2026-03-10T12:00:00Z", "2026-03-10T12:00:00Z", "USD")
    interim = org_api.get("/api/v1/invoices/interim").json()
    assert (Decimal(interim["total"]), interim["until"]) == (Decimal("2.06"), "2026-03-10T12:00:00Z")


def test_once_the_hour_is_closed_and_rolled_up_every_page_moves_to_it_together(
        org, owner, client, org_api, metered_with_a_run_not_rolled_up, clock):
    # The 32 minutes after 12:00 are accrued (the open hour), not yet stored per resource:
    # rolling up changes nothing until the hour closes (rated spans, issue 14).
    rollups.rollup_pending()
    client.force_login(owner)
    assert _figures(client.get("/").content.decode()) == [("$2.06", "to 2026-03-10 12:00 UTC")] * 2
    clock.move_to(at(13, 6))
    metering.meter_pass(until=at(13, 5))  # closes 12:00-13:00
    rollups.rollup_pending()
    expected = ("$3.26", "to 2026-03-10 13:00 UTC")  # 163 minutes at $0.02
    assert _figures(client.get("/").content.decode()) == [expected, expected]
    assert _figures(client.get("/usage/").content.decode()) == [expected]
    assert _figures(client.get("/invoices/current").content.decode()) == [expected]
    mtd = org_api.get("/api/v1/usage/month-to-date").json()
    assert (mtd["amount"], mtd["as_of"], mtd["by_product"]) == ("3.260000000000", "2026-03-10T13:00:00Z",
                                                                {"cpu-4": "3.260000000000"})
    assert org_api.get("/api/v1/invoices/interim").json()["until"] == "2026-03-10T13:00:00Z"


def test_before_anything_is_metered_the_figure_is_zero_and_says_so(org, owner, client, org_api, clock):
    client.force_login(owner)
    assert _figures(client.get("/").content.decode()) == [("$0.00", "nothing metered yet")] * 2
    mtd = org_api.get("/api/v1/usage/month-to-date").json()
    assert (mtd["amount"], mtd["as_of"]) == ("0.000000000000", None)
