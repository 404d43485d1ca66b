"""The spend explorer in a real browser: a customer opens it, switches interval and
grouping, reads the chart and tables, downloads the CSV; no JavaScript error, no serious
accessibility violation, nothing cut off on a phone."""

from __future__ import annotations

from decimal import Decimal

from core.tests.browser import axe_violations, overflowing, shot


def test_a_customer_explores_spend_switches_views_and_downloads_the_csv(portal_page, owner, spend_history):
    page = portal_page(owner)
    page.goto("/usage/")
    page.get_by_role("link", name="Spend explorer").click()
    page.wait_for_url("**/usage/spend/")
    assert page.locator(".bars rect.bars-seg").count() > 0
    assert page.locator(".bars rect.bars-forecast").count() > 0  # the rest of the month, dashed
    legend = page.locator(".legend li").all_inner_texts()
    assert "CPU 2 vCPU" in legend and "Memory 8 GB" in legend and "Forecast" in legend
    # The two days spent so far, then the 29 still to come as one forecast row.
    rows = page.locator("#spend-periods tbody tr")
    assert rows.count() == 3 and "3 Mar – 31 Mar 2026, still to come" in rows.nth(2).inner_text()
    shot(page, "spend-explorer-desktop")
    assert axe_violations(page) == []

    page.get_by_role("group", name="Interval").get_by_role("link", name="Week").click()
    page.wait_for_url("**interval=week**")
    # 1 Mar is a Sunday, week 9's last day; week 10 is this week; weeks 11 to 14 are to come.
    assert page.locator("#spend-periods tbody th").all_inner_texts() == [
        "Week 9, 1 Mar 2026", "Week 10, 2 Mar – 8 Mar 2026", "9 Mar – 31 Mar 2026, still to come"]
    page.get_by_role("group", name="Group by").get_by_role("link", name="Resource").click()
    page.wait_for_url("**group_by=resource**")
    assert set(page.locator("#spend-groups tbody td strong").all_inner_texts()) == {"web-1", "db-1", "batch"}
    assert page.locator(".legend li").count() == 4  # three resources and the forecast
    total = page.get_by_test_id("range-total").inner_text()
    assert total == page.get_by_test_id("mtd").inner_text()  # March so far is the month to date

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    path = download.value.path()
    lines = open(path, encoding="utf-8").read().splitlines()  # noqa: SIM115, PTH123
    assert lines[0] == "period_start,period_end,resource,name,amount,currency"
    assert f"${sum(Decimal(line.split(',')[4]) for line in lines[1:]):,}" == total
    assert axe_violations(page) == []
    assert page.js_errors == []


def test_the_explorer_fits_a_phone_and_says_what_is_wrong_with_a_range(portal_page, owner, spend_history):
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
