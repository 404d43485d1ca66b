"""In chromium: the one top-up flow shows what is wrong on the field and names the saved
card and the amount before charging it (issue 16, defect 3)."""

from __future__ import annotations

import re
from decimal import Decimal

from core.tests.browser import axe_violations, shot
from credits.models import TopUp


def test_the_top_up_form_shows_field_errors_and_the_confirmation_names_the_card(portal_page, owner):
    from payments.tests.factories import PaymentMethodFactory

    org = owner.memberships.get().organization
    PaymentMethodFactory(organization=org, brand="Sandbox Visa", last4="4242")
    page = portal_page(owner)

    page.goto("/credits/")
    page.locator("#topup_amount").fill("abc")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/payments/top-up\?amount=abc$"))
    assert page.locator(".errorlist").inner_text() == "Enter a number like 50 or 50.00."
    assert page.locator("#topup_amount").get_attribute("aria-invalid") == "true"

    page.locator("#topup_amount").fill("4")
    page.get_by_label("Saved card Sandbox Visa ····4242").check()
    page.get_by_role("button", name="Continue").click()
    assert page.locator(".errorlist").inner_text() == "Enter an amount of at least $5.00."
    assert axe_violations(page) == []
    shot(page, "topup-field-error")

    page.locator("#topup_amount").fill("50")
    page.get_by_label("Saved card Sandbox Visa ····4242").check()
    page.get_by_role("button", name="Continue").click()
    confirm = page.locator("section.topup-confirm")
    assert "····4242" in confirm.inner_text() and "$50.00" in confirm.inner_text()
    assert not TopUp.objects.exists()  # nothing charged before the confirmation
    assert axe_violations(page) == []
    shot(page, "topup-confirm-card")

    page.get_by_role("button", name="Charge $50.00 to Sandbox Visa ····4242").click()
    page.wait_for_url(re.compile(r"/credits/$"))
    assert "Charging $50.00 to Sandbox Visa ····4242" in page.content()
    topup = TopUp.objects.get()
    assert (topup.status, topup.amount) == ("succeeded", Decimal("50"))
    assert "Manual top-up" in page.locator("#top-up").inner_text()
    shot(page, "topup-charged")
    assert page.js_errors == []
