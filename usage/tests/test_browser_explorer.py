"""The spend explorer in a real browser: a customer opens it, switches interval and
grouping, reads the chart and tables, downloads the CSV; no JavaScript error, no serious
accessibility violation, nothing cut off on a phone."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from accounts.models import BillingMode
from core.tests.browser import axe_violations, overflowing, shot
from usage import metering, rollups
from usage.ingest import events_ingest
from usage.tests.factories import ProductFactory, add_price

NOW = datetime(2026, 3, 8, 10, 35, tzinfo=UTC)
# (external id, name, product code, product name, $/hour, [(day, hour, minute, event)])
FLEET = [
    ("srv-gpu", "training-a100", "gpu-a100", "A100 GPU", "1.89", [(1, 12, 20, "started")]),
    ("srv-web", "web-frontend", "cpu-4", "CPU 4 vCPU", "0.0962", [(1, 12, 5, "started")]),
    ("srv-db", "db-primary", "mem-32", "Memory 32 GB", "0.212", [(1, 13, 0, "started")]),
    ("srv-ci", "ci-runner", "cpu-2", "CPU 2 vCPU", "0.0481", [(2, 8, 0, "started"), (6, 18, 30, "stopped")]),
    ("srv-l40s", "render-l40s", "gpu-l40s", "L40S GPU", "0.87",
     [(3, 9, 0, "started"), (5, 21, 40, "stopped"), (7, 6, 0, "started")]),
]


@pytest.fixture
def fleet(org):
    """Five servers over a week of March, metered and rolled up to 8 Mar 10:00."""
    with time_machine.travel(NOW, tick=False):
        org.billing_mode, org.credit_limit = BillingMode.POSTPAID, Decimal(10_000)
        org.save(update_fields=["billing_mode", "credit_limit"])
        events = []
        for external_id, name, code, product_name, rate, history in FLEET:
            add_price(ProductFactory(code=code, name=product_name), rate, valid_from=datetime(2026, 1, 1, tzinfo=UTC))
            first = history[0]
            events.append({"id": f"{external_id}-c", "type": "created", "resource": external_id, "name": name,
                           "organization": org.pk, "product": code,
                           "timestamp": datetime(2026, 3, first[0], first[1], 0, tzinfo=UTC).isoformat()})
            events += [{"id": f"{external_id}-{n}", "type": kind, "resource": external_id,
                        "timestamp": datetime(2026, 3, day, hour, minute, tzinfo=UTC).isoformat()}
                       for n, (day, hour, minute, kind) in enumerate(history)]
        assert events_ingest(items=events).as_dict()["rejected"] == 0
        metering.meter_pass(until=datetime(2026, 3, 8, 10, 0, tzinfo=UTC))
        rollups.rollup_pending()
        yield


@pytest.fixture
def at_now():
    with time_machine.travel(NOW, tick=False):
        yield


def test_a_customer_explores_spend_switches_views_and_downloads_the_csv(portal_page, owner, fleet, at_now):
    page = portal_page(owner)
    page.goto("/usage/")
    page.get_by_role("link", name="Spend explorer").click()
    page.wait_for_url("**/usage/spend/")
    assert page.locator(".bars rect.bars-seg").count() > 0
    assert page.locator(".bars rect.bars-forecast").count() > 0  # the rest of the month, dashed
    legend = page.locator(".legend li").all_inner_texts()
    assert legend[0] == "A100 GPU" and "Memory 32 GB" in legend and legend[-1] == "Forecast"
    # The eight days spent so far, then the 23 still to come as one forecast row.
    rows = page.locator("#spend-periods tbody th").all_inner_texts()
    assert rows[0] == "Sun 2026-03-01" and rows[-1] == "2026-03-09 – 2026-03-31, still to come" and len(rows) == 9
    shot(page, "spend-explorer-desktop")
    assert axe_violations(page) == []

    page.get_by_role("group", name="Interval").get_by_role("link", name="Week").click()
    page.wait_for_url("**interval=week**")
    # 1 Mar is a Sunday, the last day of ISO week 9; 2-8 Mar is week 10; weeks 11 to 14 are to come.
    assert page.locator("#spend-periods tbody th").all_inner_texts() == [
        "Week 9, 2026-03-01", "Week 10, 2026-03-02 – 2026-03-08", "2026-03-09 – 2026-03-31, still to come"]
    page.get_by_role("group", name="Group by").get_by_role("link", name="Resource").click()
    page.wait_for_url("**group_by=resource**")
    assert page.locator("#spend-groups tbody td strong").all_inner_texts() == [
        "training-a100", "render-l40s", "db-primary", "web-frontend", "ci-runner"]  # largest first
    total = page.get_by_test_id("range-total").inner_text()
    assert total == page.get_by_test_id("mtd").inner_text()  # March so far is the month to date

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    with open(download.value.path(), encoding="utf-8") as f:  # noqa: PTH123
        lines = f.read().splitlines()
    assert lines[0] == "period_start,period_end,resource,name,currency,amount"
    assert f"${sum(Decimal(line.split(',')[5]) for line in lines[1:]):,}" == total
    assert axe_violations(page) == []
    assert page.js_errors == []


def test_the_explorer_fits_a_phone_and_says_what_is_wrong_with_a_range(portal_page, owner, fleet, at_now):
    page = portal_page(owner, viewport="phone")
    page.goto("/usage/spend/")
    assert overflowing(page, ".content") == []
    shot(page, "spend-explorer-phone")
    assert axe_violations(page) == []
    page.get_by_label("From").fill("2026-03-09")
    page.get_by_label("To").fill("2026-03-01")
    page.get_by_role("button", name="Show").click()
    assert "To is before From" in page.locator("#to-errors").inner_text()
    assert page.js_errors == []
