"""In chromium: the zero-balance ladder's banner across the top of the dashboard, with its
dates, readable and accessible on desktop and phone (issue 19, item 4)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.tests.browser import axe_violations, overflowing, shot
from credits import hibernation, ladder

from .test_ladder import out_of_credit


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_the_ladder_banner_on_the_dashboard(portal_page, owner, viewport):
    org = owner.memberships.get().organization
    since = timezone.now() - timedelta(days=2)
    out_of_credit(org, at=since)
    hibernation.hibernate_due(now=since)
    ladder.advance_due()  # the day-1 notice
    page = portal_page(owner, viewport=viewport)
    page.goto("/")
    banner = page.locator("section.ladder-banner")
    text = banner.inner_text()
    assert "Resources hibernated: credit ran out" in text
    for label in ("Hibernated since", "Next notice", "Deletion scheduled on"):
        assert label in text, label
    assert banner.get_by_role("link", name="Top up").count() == 1
    assert axe_violations(page) == []
    assert overflowing(page) == []
    shot(page, f"dashboard-ladder-{viewport}")
    assert page.js_errors == []
