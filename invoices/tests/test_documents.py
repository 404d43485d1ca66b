"""Documents a finance clerk can check with a calculator (issue 15, items 2 and 8): every
line recomputes from what it shows, a 0 % line says why, money reads one way, and a
statement's totals never stand alone on a page."""

from __future__ import annotations

import os
import re
from decimal import ROUND_HALF_UP, Decimal
from html import unescape

import pytest
from django.template.loader import render_to_string

from accounts.models import BillingMode
from accounts.tests.factories import OrganizationFactory
from invoices import engine, rendering
from invoices.models import Invoice
from invoices.tests.helpers import hourly_rows, utc

pytestmark = pytest.mark.django_db

NOW = utc(2026, 11, 1, 2)
MONEY = re.compile(r"^-?\$\d{1,3}(,\d{3})*\.\d{2}$")


def bill_october(org) -> Invoice:
    the_run, todo = engine.invoice_run_start(now=NOW, org_ids=[org.pk], dispatch=False)
    for org_id in todo:
        engine.invoice_organization(run_id=the_run.pk, organization_id=org_id, render_pdf=False, send_email=False,
                                    now=NOW)
    return Invoice.objects.get(organization=org)


@pytest.fixture
def usage_invoice(fixture_pipeline, ledger):
    """89 h 29 min at $0.0298/hour, 37 h 41 min at $11.50/hour, and a monthly fee of $23.92
    held for part of the month: quantities that do not end after three places."""
    org = OrganizationFactory(billing_mode=BillingMode.POSTPAID)
    fixture_pipeline[org.pk] = {"usage": [
        *hourly_rows(start=utc(2026, 10, 3), end=utc(2026, 10, 6, 17, 29), rate="0.0298", product="cpu-1"),
        *hourly_rows(start=utc(2026, 10, 7), end=utc(2026, 10, 8, 13, 41), rate="11.50", product="gpu-1",
                     resource=2, group="gpu-1", price_id=2),
        *hourly_rows(start=utc(2026, 10, 12, 7, 13), end=utc(2026, 11, 1), rate="0", product="ip-1", resource=3,
                     group="ip-1", price_id=3, billing_model="monthly", monthly_fee="23.92"),
    ]}
    return bill_october(org)


def line_cells(html: str) -> list[list[str]]:
    """The cells of every line row: rows with a quantity, unit price, tax and amount."""
    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", html, flags=re.S):
        cells = [unescape(re.sub(r"<[^>]+>", " ", c)).replace("\xa0", " ").split()
                 for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, flags=re.S)]
        cells = [" ".join(c) for c in cells]
        if len(cells) == 5 and " / " in cells[2]:
            rows.append(cells)
    return rows


def recompute(cells: list[str]) -> tuple[Decimal, Decimal]:
    quantity_text, price_text, amount_text = cells[1], cells[2], cells[4]
    quantity, unit = quantity_text.split(" ", 1)
    price, per = price_text.split(" / ")
    assert price.startswith("$"), f"unit price without its currency: {price_text!r}"
    assert unit in ("hour", "hours", "month", "months"), f"unit not in words: {quantity_text!r}"
    assert per in ("hour", "month") and unit.rstrip("s") == per
    product = Decimal(quantity.replace(",", "")) * Decimal(price[1:].replace(",", ""))
    return product.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), Decimal(amount_text[1:].replace(",", ""))


def test_every_line_recomputes_from_the_quantity_and_unit_price_it_shows(usage_invoice, make_member, client):
    """Issue 15, item 2: parse the rendered line, multiply, round half-up once, compare."""
    client.force_login(make_member(usage_invoice.organization, "billing").user)
    documents = {
        "pdf": render_to_string("invoices/pdf/invoice.html", rendering.invoice_context(usage_invoice)),
        "portal": client.get(f"/invoices/{usage_invoice.pk}/").content.decode(),
    }
    for name, html in documents.items():
        rows = line_cells(html)
        assert len(rows) == usage_invoice.lines.count() == 3, name
        for cells in rows:
            computed, shown = recompute(cells)
            assert computed == shown, f"{name}: {cells}"
    pdf_rows = {row[0].split()[0]: row for row in line_cells(documents["pdf"])}
    assert pdf_rows["CPU-1"][1:3] == ["89.483 hours", "$0.0298 / hour"]
    assert pdf_rows["GPU-1"][2] == "$11.50 / hour"


def test_the_console_shows_each_line_as_the_documents_do(usage_invoice, client):
    from django.contrib.auth.models import Group

    from accounts.staff import BILLING_ADMIN
    from accounts.tests.factories import UserFactory

    staff = UserFactory(is_staff=True)
    staff.groups.add(Group.objects.get(name=BILLING_ADMIN))
    client.force_login(staff)
    page = unescape(client.get(f"/console/invoices/invoice/{usage_invoice.pk}/change/").content.decode())
    assert "89.483 hours" in page and "$0.0298 / hour" in page


@pytest.fixture
def statement(fixture_pipeline, ledger):
    """A prepaid customer in the US: a statement, 0 % tax (outside the scope of EU VAT),
    with just enough lines that the totals would not fit under them on page 1."""
    org = OrganizationFactory(billing_mode=BillingMode.PREPAID, country="US", name="Prairie Render Co",
                              address_line1="200 Main St", city="Omaha", postal_code="68102")
    ledger.set(org, Decimal("5000.00"))
    usage = []
    for i in range(int(os.environ.get("STATEMENT_LINES", "14"))):
        usage += hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 10, 2 + i % 3, 5, 7), rate="0.0298",
                             product=f"cpu-{i}", resource=i + 1, group=f"node-{i // 3}", price_id=i + 1)
    fixture_pipeline[org.pk] = {"usage": usage}
    invoice = bill_october(org)
    assert invoice.is_statement
    return invoice


def test_a_zero_rate_prints_its_reason(statement):
    """Issue 15, item 8: 0 % tax with no reason printed is a question for the clerk."""
    html = unescape(render_to_string("invoices/pdf/invoice.html", rendering.invoice_context(statement)))
    tax = re.search(r'<table class="tax">(.*?)</table>', html, flags=re.S).group(1)
    assert "0%" in tax and "Outside the scope of EU VAT" in tax


def money_tokens(text: str) -> list[str]:
    """Every amount written in `text` (rates, followed by " / unit", left out)."""
    text = unescape(re.sub(r"<[^>]+>", " ", text)).replace("\xa0", " ")
    tokens = re.findall(r"(\$[\d,]+(?:\.\d+)?|\b\d[\d,]*(?:\.\d+)? ?(?:USD|EUR)\b|\bUSD ?\d[\d,.]*)( / )?", text)
    return [token for token, per in tokens if not per]


def test_money_reads_one_way_on_every_document(fixture_pipeline, ledger):
    """Issue 15, item 8: every amount on an invoice, in its lines' descriptions too, and in
    its email, is written '$1,234.56'."""
    from django.core import mail

    from invoices.sources import Minimum

    org = OrganizationFactory(billing_mode=BillingMode.POSTPAID, billing_email="ap@example.com")
    fixture_pipeline[org.pk] = {
        "usage": hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 10, 3, 5, 7), rate="0.0298"),
        "minimum": Minimum(amount=Decimal("1000"), currency="USD", contract_id=1),
    }
    invoice = bill_october(org)
    html = render_to_string("invoices/pdf/invoice.html", rendering.invoice_context(invoice))
    rendering.invoice_send_email(invoice_id=invoice.pk)
    for name, text in (("pdf", html), ("email", mail.outbox[-1].body)):
        amounts = [a for a in money_tokens(text)]
        assert amounts and all(MONEY.match(a) for a in amounts), (name, [a for a in amounts if not MONEY.match(a)])
    assert "Committed monthly spend $1,000.00" in unescape(html)


def page_texts(invoice: Invoice) -> list[str]:
    """The text on each page, as WeasyPrint laid it out for the PDF."""
    from weasyprint import HTML

    css, fonts = rendering._stylesheet()
    html = render_to_string("invoices/pdf/invoice.html", rendering.invoice_context(invoice))
    document = HTML(string=html).render(stylesheets=[css], font_config=fonts)

    def text(box) -> str:
        own = getattr(box, "text", "") or ""
        return own + " ".join(text(child) for child in getattr(box, "children", []))

    return [text(page._page_box) for page in document.pages]


def test_a_statements_totals_never_stand_alone_on_a_page(statement, tmp_path):
    """Issue 15, item 8: when the totals do not fit under the lines, lines go with them."""
    if os.environ.get("DOCS_PDF_OUT"):
        with open(os.environ["DOCS_PDF_OUT"], "wb") as out:
            out.write(rendering.render_invoice_pdf(statement))
    pages = page_texts(statement)
    totals_page = next(i for i, text in enumerate(pages) if "Amount due" in text)
    assert any(name in pages[totals_page] for name in ("CPU-", "node-")), "the totals are alone on their page"
