"""In chromium: a checkout left with "Cancel and go back" does not hide the invoice; it is
paid from its own page, once (issue 16, defect 1)."""

from __future__ import annotations

import re
from decimal import Decimal

from core.tests.browser import axe_violations, shot
from payments.models import Payment, PaymentStatus
from payments.tests.factories import make_open_invoice


def test_an_abandoned_checkout_then_paying_the_invoice_from_its_page(portal_page, owner):
    org = owner.memberships.get().organization
    invoice = make_open_invoice(org, amount_due=Decimal("20000.00"))
    page = portal_page(owner)

    page.goto("/payments/")
    row = page.locator("tr", has_text=invoice.number)
    row.get_by_role("button", name="Pay (sandbox)").click()
    page.wait_for_url(re.compile(r"/payments/sandbox/checkout/\d+$"))
    page.get_by_role("link", name="Cancel and go back").click()
    page.wait_for_url(re.compile(r"/payments/\d+\?canceled=1$"))
    assert "Checkout was left without paying" in page.content()
    shot(page, "checkout-abandoned")

    page.goto("/payments/")
    assert page.get_by_text("Nothing to pay.").count() == 0
    assert page.locator("tr", has_text=invoice.number).get_by_role("button", name="Pay (sandbox)").is_visible()

    page.goto(f"/invoices/{invoice.pk}/")
    panel = page.locator("section#pay")
    assert "Pay this invoice" in panel.inner_text() and "$20,000.00" in panel.inner_text()
    assert axe_violations(page) == []
    shot(page, "invoice-pay-after-abandoned-checkout")
    panel.get_by_role("button", name="Pay (sandbox)").click()
    page.wait_for_url(re.compile(r"/payments/sandbox/checkout/\d+$"))
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    page.wait_for_url(re.compile(r"/payments/\d+$"))
    assert "Payment received" in page.content()

    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", Decimal("20000.00"))
    assert sorted(Payment.objects.values_list("status", flat=True)) == [PaymentStatus.CANCELED,
                                                                        PaymentStatus.SUCCEEDED]
    page.goto(f"/invoices/{invoice.pk}/")
    assert page.locator("section#pay").count() == 0
    shot(page, "invoice-paid-once")
    assert page.js_errors == []
