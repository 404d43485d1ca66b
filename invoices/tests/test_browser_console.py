"""The console's invoice list in chromium at 1366 px (a laptop): every column fits, money is
money and dates are ISO-like."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts.staff import BILLING_ADMIN
from accounts.tests.factories import OrganizationFactory, UserFactory
from core.tests.browser import overflowing, shot
from invoices.tests.factories import make_invoice


@pytest.fixture
def staff_user(transactional_db):
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=BILLING_ADMIN))
    return user


def test_the_invoice_list_fits_a_laptop_screen(portal_page, staff_user):
    org = OrganizationFactory(name="Nordlicht Rechenzentrum Aktiengesellschaft & Co. KG", currency="EUR")
    for month in (9, 10, 11):
        make_invoice(org, amounts=("20000.00", "373.385"), month=month)
    page = portal_page(staff_user, viewport="laptop")
    page.goto("/console/invoices/invoice/")
    assert page.locator("#result_list tbody tr").count() == 3
    shot(page, "console-invoices-laptop", full_page=False)
    assert overflowing(page) == []
    text = page.locator("#result_list").inner_text()
    assert "€20,373.39" in text and "20373.385" not in text
    assert "2026-09-28" in text or "2026-10-01" in text, text[:400]
