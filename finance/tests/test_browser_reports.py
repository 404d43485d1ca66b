"""The console's report pages in chromium at 1366 px (a laptop): the Usage trends report
over a month of GPU usage draws its chart (the vendored Chart.js, under the CSP, no
JavaScript error), passes the WCAG 2.1 AA scan, and nothing runs off the screen. The
report pages are staff pages, so the portal's scan (core/tests/test_browser_accessibility.py)
leaves them to this test."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import Group

from accounts.staff import BILLING_ADMIN
from accounts.tests.factories import OrganizationFactory, UserFactory
from core.tests.browser import axe_violations, overflowing, shot
from pricing.models import ResourceState
from pricing.tests.factories import ProductFactory
from usage.models import UsageDaily
from usage.tests.factories import ResourceFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def staff_user(transactional_db):
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=BILLING_ADMIN))
    return user


@pytest.fixture
def november(transactional_db):
    """Three GPU flavours and a CPU one, three customers, every day of November 2026."""
    flavours = [ProductFactory(code="gpu-h100-8x", name="H100 × 8", gpu_count=8),
                ProductFactory(code="gpu-a100-4x", name="A100 × 4", gpu_count=4),
                ProductFactory(code="gpu-l40s-1x", name="L40S × 1", gpu_count=1),
                ProductFactory(code="cpu-16", name="CPU 16 vCPU", gpu_count=0)]
    rates = [D("24.50"), D("9.80"), D("1.35"), D("0.42")]
    customers = [OrganizationFactory(name=n, currency="EUR") for n in ("Nordlicht Rechenzentrum AG", "Acme AI GmbH",
                                                                         "Tiny Lab")]
    for c, org in enumerate(customers):
        for p, product in enumerate(flavours):
            resource = ResourceFactory(organization=org, product=product)
            for day in range(1, 31):
                minutes = (60 * (4 + (day * (p + 1) + c * 5) % 17)) // (c + 1)
                UsageDaily.objects.create(organization=org, resource=resource, product=product,
                                          state=ResourceState.RUNNING, price_id=1, currency="EUR",
                                          day=date(2026, 11, day), minutes=minutes,
                                          amount=rates[p] * minutes / 60)


def test_the_usage_report_page_draws_its_chart_and_fits_a_laptop(portal_page, staff_user, november):
    page = portal_page(staff_user, viewport="laptop")
    page.goto("/console/finance/reports/usage/?from=2026-11-01&to=2026-11-30&currency=EUR&grain=day")
    page.wait_for_function("() => { const c = document.getElementById('report-chart'); "
                           "return c && c.width > 0 && window.Chart && Chart.getChart(c) }")
    drawn = page.evaluate("() => Chart.getChart(document.getElementById('report-chart')).data.datasets.length")
    assert drawn == 3  # the three GPU flavours (the CPU one has no GPU-hours)
    assert page.js_errors == []
    assert page.locator(".cb-report-table tbody tr").count() == 120  # 30 days × 4 products
    shot(page, "console-report-usage-laptop", full_page=False)
    assert overflowing(page) == []
    assert axe_violations(page) == []


def test_the_top_customers_and_the_index(portal_page, staff_user, november):
    page = portal_page(staff_user, viewport="laptop")
    page.goto("/console/finance/reports/usage/?from=2026-11-01&to=2026-11-30&currency=EUR&group_by=customer")
    page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('report-chart'))")
    assert page.locator(".cb-report-table tbody tr").count() == 3
    assert page.js_errors == []
    shot(page, "console-report-usage-customers-laptop", full_page=False)
    assert overflowing(page) == []
    assert axe_violations(page) == []
    page.goto("/console/finance/reports/")
    assert page.get_by_role("link", name="Usage trends").count() == 1
    assert axe_violations(page) == []
    page.goto("/console/finance/reports/usage/?from=2026-11-01&to=2026-10-01&currency=EURO")
    assert page.locator("#id_to_errors").inner_text() == "The range ends before it starts."
    assert axe_violations(page) == []
