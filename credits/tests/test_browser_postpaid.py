"""In chromium: a postpaid organisation's dashboard and Credits page speak of its credit
limit, usage to date and open invoices, not of prepaid credit (issue 16, defect 2)."""

from __future__ import annotations

from decimal import Decimal

from accounts.models import BillingMode
from core.tests.browser import axe_violations, shot
from credits import services


def test_the_postpaid_dashboard(portal_page, owner):
    from payments.tests.factories import make_open_invoice

    org = owner.memberships.get().organization
    org.billing_mode, org.credit_limit, org.payment_terms_days = BillingMode.POSTPAID, Decimal("50000"), 30
    org.save()
    services.credit_adjust(organization=org, amount=Decimal("-20373.38"), reason="usage drawn for the test")
    make_open_invoice(org, amount_due=Decimal("20000.00"))
    page = portal_page(owner)

    page.goto("/")
    card = page.locator("section.credit-card")
    text = card.inner_text()
    assert "Postpaid" in text and "Credit limit" in text and "$50,000.00" in text
    assert "Open invoices" in text and "$20,000.00" in text and "Unpaid so far" in text
    for prepaid in ("prepaid", "Low", "Top up", "Runway", "Auto top-up"):
        assert prepaid not in text, prepaid
    assert card.locator(".stat").evaluate("e => getComputedStyle(e).color") != page.evaluate(
        "() => getComputedStyle(document.documentElement).getPropertyValue('--bad')")
    assert axe_violations(page) == []
    shot(page, "dashboard-postpaid")

    page.goto("/credits/")
    body = page.locator("main").inner_text()
    assert "Your account is postpaid" in body and "prepaid balance" not in body
    assert page.get_by_role("button", name="Buy credit").count() == 0
    assert page.get_by_text("Auto top-up").count() == 0
    shot(page, "credits-postpaid")
    assert page.js_errors == []
