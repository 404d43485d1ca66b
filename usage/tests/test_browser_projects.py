"""Projects and labels in a real browser (issue 19, item 1): an owner moves a resource into
a project and labels it on its page, reads the Projects page and the explorer by project;
no serious accessibility violation, nothing cut off on a phone."""

from __future__ import annotations

import pytest

from core.tests.browser import axe_violations, overflowing, shot
from usage.models import Resource
from usage.tests.test_browser_explorer import at_now, fleet  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


def test_an_owner_moves_a_resource_into_a_project_and_reads_spend_by_project(portal_page, owner, fleet,  # noqa: F811
                                                                            at_now):  # noqa: F811
    page = portal_page(owner)
    page.goto("/usage/projects/")
    page.get_by_label("Name", exact=True).fill("GPU training")
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url("**/usage/projects/")
    assert page.get_by_text("Project “GPU training” created.").is_visible()
    gpu = Resource.objects.get(external_id="srv-gpu")
    page.goto(f"/usage/resources/{gpu.pk}/")
    page.get_by_label("Project", exact=True).select_option(label="GPU training")
    page.get_by_label("Labels", exact=True).fill("team=research\nenv=prod")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"**/usage/resources/{gpu.pk}/")
    assert page.locator(".badge", has_text="team=research").is_visible()
    shot(page, "resource-project-and-labels")
    assert axe_violations(page) == []

    page.goto("/usage/projects/")
    rows = page.locator("table tbody tr").all_inner_texts()
    assert rows[0].startswith("GPU training") and rows[-1].startswith("No project")
    shot(page, "projects")
    assert axe_violations(page) == []

    page.goto("/usage/spend/?group_by=project")
    assert "GPU training" in page.locator(".legend").inner_text()
    page.get_by_role("link", name="Label: team").click()
    page.wait_for_url("**label_key=team**")
    shot(page, "spend-by-label")
    assert axe_violations(page) == [] and page.js_errors == []

    phone = portal_page(owner, viewport="phone")
    phone.goto("/usage/projects/")
    shot(phone, "projects-phone")
    assert overflowing(phone, ".content") == []
    assert axe_violations(phone) == []
