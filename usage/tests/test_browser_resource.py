"""A resource's page in a real browser: a customer picks the month from the Usage page's
link and reads measured against billable (usage.billable) on a desktop and on a phone;
no serious accessibility violation, nothing cut off."""

from __future__ import annotations

import pytest

from core.tests.browser import axe_violations, overflowing, shot
from usage.tests.test_billable import CUTOFF, at, world  # noqa: F401  (the metered history)


@pytest.fixture
def at_cutoff():
    with at(CUTOFF):
        yield


def test_a_customer_reads_measured_against_billable(portal_page, world, make_member, at_cutoff):  # noqa: F811
    owner = make_member(world["org"], "owner").user
    page = portal_page(owner)
    page.goto(f"/usage/resources/{world['gpu1'].pk}/")
    rows = page.locator("table").first.locator("tbody tr").all_inner_texts()
    assert [r.split("\t")[0] for r in rows] == ["Running", "Stopped", "Provisioning", "Error"]
    assert "Error state: not billed." in rows[3]
    assert page.get_by_text("40 min added").is_visible()
    shot(page, "resource-measured-vs-billable")
    assert axe_violations(page) == []
    # The months offered start with the resource's first: November only.
    assert page.get_by_label("Month", exact=True).locator("option").all_inner_texts() == ["November 2026"]
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**month=2026-11")
    page.goto(f"/usage/resources/{world['gpu1'].pk}/?month=2026-10")
    assert page.get_by_text("Nothing measured in October 2026.").is_visible()
    assert page.js_errors == []

    phone = portal_page(owner, viewport="phone")
    phone.goto(f"/usage/resources/{world['capped1'].pk}/")
    shot(phone, "resource-measured-vs-billable-phone")
    assert phone.get_by_text("saved you $47.60").is_visible()
    assert overflowing(phone, ".content") == []
    assert axe_violations(phone) == []
