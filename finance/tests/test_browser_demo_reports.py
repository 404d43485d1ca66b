"""Every report page over the demo's history (`seed_demo`: August to November 2026 as of
3 December), in chromium at 1366 px: each draws its chart with no JavaScript error,
nothing runs off the page, and the WCAG 2.1 AA scan passes. With SCREENSHOTS_DIR set
the pages are the screenshots of docs/finance.md ("The demo"):
docs/screenshots/console-report-<name>.png."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.management import call_command

from accounts.staff import BILLING_ADMIN
from accounts.tests.factories import UserFactory
from core.tests.browser import axe_violations, overflowing, shot
from finance.reports.registry import reports

pytestmark = pytest.mark.browser

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
RANGE = "from=2026-08-01&to=2026-11-30&grain=month"
# Each report in the currency where the demo gives it most to say: credit is held by the
# prepaid USD customers, receivables are the postpaid EUR customer's.
PAGES = {
    "revenue": "currency=USD",
    "credit-held": "currency=USD",
    "receivables": "currency=EUR",
    "recurring": "currency=USD",
    "collections": "currency=EUR&group_by=total",
    "usage": "currency=USD",
}


@pytest.fixture
def demo(transactional_db):
    with time_machine.travel(NOW, tick=False):
        call_command("seed_demo", stdout=io.StringIO())
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=BILLING_ADMIN))
    return user


def test_every_report_page_over_the_demo_history(portal_page, demo):
    assert set(PAGES) >= set(reports()), "a report without a demo page"
    page = portal_page(demo, viewport="laptop")
    for name, query in PAGES.items():
        if name not in reports():
            continue
        page.goto(f"/console/finance/reports/{name}/?{RANGE}&{query}")
        page.wait_for_function("() => { const c = document.getElementById('report-chart'); "
                               "return c && c.width > 0 && window.Chart && Chart.getChart(c) }")
        chart = page.evaluate("() => { const c = Chart.getChart(document.getElementById('report-chart'));"
                              " return c.data.datasets.map(d => [d.label, d.type || c.config.type,"
                              " d.data.some(v => v !== 0)]) }")
        assert any(drawn for _, _, drawn in chart), f"{name}: the chart draws nothing"
        assert page.locator(".cb-report-table tbody tr").count() >= 1
        assert "Nothing in this range." not in page.locator(".cb-report-table").inner_text()
        if name == "recurring":
            kinds = {label: kind for label, kind, _ in chart}
            assert kinds["Closing MRR"] == "line" and kinds["New"] == "bar"
        # Money on the axis as the table writes it.
        ticks = page.evaluate("() => Chart.getChart(document.getElementById('report-chart'))"
                              ".scales.y.ticks.map(t => t.label)")
        if "currency=USD" in query and name != "usage":
            assert any(str(t).startswith("$") for t in ticks), (name, ticks)
        if "currency=EUR" in query:
            assert any(str(t).startswith("€") for t in ticks), (name, ticks)
        assert page.js_errors == []
        shot(page, f"console-report-{name}")
        assert overflowing(page) == [], name
        assert axe_violations(page) == [], name
