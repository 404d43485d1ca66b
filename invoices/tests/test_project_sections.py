"""Invoices grouped by project (issue 19, item 1): the detail page, the PDF and the interim
invoice put the usage lines under a heading per project of their resource."""

from __future__ import annotations

import re
from decimal import Decimal
from html import unescape

import pytest
from django.template.loader import render_to_string

from invoices import rendering
from invoices.tests.test_documents import NOW, usage_invoice  # noqa: F401  (a fixture)
from usage.models import Project, Resource
from usage.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).replace("\xa0", " ").split())


@pytest.fixture
def in_projects(usage_invoice):  # noqa: F811
    """The October invoice's lines named after real resources: cpu-1's in "Research", gpu-1's
    in "Training", ip-1's in no project."""
    org = usage_invoice.organization
    product = ProductFactory()
    research = Project.objects.create(organization=org, slug="research", name="Research")
    training = Project.objects.create(organization=org, slug="training", name="Training")
    # The issued lines cannot change: the resources take the ids the lines name.
    for code, project in (("cpu-1", research), ("gpu-1", training), ("ip-1", None)):
        line = usage_invoice.lines.get(product_code=code)
        Resource.objects.create(pk=line.resource_id, organization=org, external_id=f"r-{code}", product=product,
                                state_since=NOW, project=project)
    return usage_invoice


def test_without_projects_the_document_has_no_project_headings(usage_invoice):  # noqa: F811
    html = render_to_string("invoices/pdf/invoice.html", rendering.invoice_context(usage_invoice))
    assert "Project:" not in html
    assert [s["name"] for s in rendering.invoice_context(usage_invoice)["sections"]] == [""]


def test_the_pdf_and_the_page_group_lines_under_their_projects_and_the_sections_add_up(in_projects, client,
                                                                                        make_member):
    context = rendering.invoice_context(in_projects)
    sections = context["sections"]
    assert [s["name"] for s in sections] == ["Research", "Training", "No project"]
    assert sum(s["subtotal"] for s in sections) == in_projects.subtotal
    lines = {ln.product_code: ln for ln in in_projects.lines.all()}
    assert sections[1]["subtotal"] == lines["gpu-1"].amount
    text = _text(render_to_string("invoices/pdf/invoice.html", context))
    assert text.index("Project: Research") < text.index("Project: Training") < text.index("Project: No project")
    assert "Project: Training $433.36" in text and lines["gpu-1"].amount == Decimal("433.36")

    client.force_login(make_member(in_projects.organization, "owner").user)
    page = _text(client.get(f"/invoices/{in_projects.pk}/").content.decode())
    assert "Project: Research" in page and "Project: No project" in page
