"""Forms in chromium: a refused value is said on its own field, beside what was typed
(billing profile: a stored non-country and a VAT id failing its check digits; Credits:
auto top-up)."""

from __future__ import annotations

from accounts.models import Organization
from core.tests.browser import shot


def test_the_billing_profile_says_on_each_field_what_is_wrong(portal_page, owner, org):
    Organization.objects.filter(pk=org.pk).update(country="ZZ", vat_id="")
    page = portal_page(owner)
    page.goto("/settings/")
    country = page.locator("select[name=country]")
    assert country.input_value() == "ZZ"  # a stored code is shown as it is, marked
    page.fill("input[name=vat_id]", "NL123")
    page.get_by_role("button", name="Save", exact=True).click()
    field = page.locator(".field", has=country)
    assert "is not a country code" in field.locator(".errorlist").inner_text()

    country.select_option("NL")
    page.get_by_role("button", name="Save", exact=True).click()
    vat = page.locator(".field", has=page.locator("input[name=vat_id]"))
    assert "not a valid VAT number for Netherlands" in vat.locator(".errorlist").inner_text()
    assert page.locator("input[name=vat_id]").input_value() == "NL123"
    assert page.locator("select[name=country]").input_value() == "NL"
    assert page.locator("ul.messages .error").count() == 0  # no banner: the fields say it
    shot(page, "settings-vat-error")

    page.fill("input[name=vat_id]", "NL 0044.95445.B01")
    page.get_by_role("button", name="Save", exact=True).click()
    assert "Billing profile saved." in page.content()
    org.refresh_from_db()
    assert (org.country, org.vat_id) == ("NL", "NL004495445B01")


def test_auto_top_up_errors_sit_on_their_field_and_keep_what_was_typed(portal_page, owner):
    page = portal_page(owner)
    page.goto("/credits/")
    ids = page.evaluate("() => [...document.querySelectorAll('[id]')].map(e => e.id)")
    assert len(ids) == len(set(ids)) and page.locator("#topup_amount, #id_auto-amount").count() == 2  # two forms, two ids
    page.check("input[name=auto-enabled]")
    page.fill("input[name=auto-threshold]", "20")
    page.fill("input[name=auto-amount]", "100")
    page.fill("input[name=auto-monthly_cap]", "50")
    page.get_by_role("button", name="Save").click()
    cap = page.locator(".field", has=page.locator("input[name=auto-monthly_cap]"))
    assert "The monthly cap must allow at least one top-up." in cap.locator(".errorlist").inner_text()
    assert page.locator("input[name=auto-monthly_cap]").input_value() == "50"
    assert page.locator("input[name=auto-amount]").input_value() == "100"
    assert page.locator("input[name=auto-enabled]").is_checked()
    assert "monthly_cap:" not in page.content()
    shot(page, "credits-auto-topup-error")
