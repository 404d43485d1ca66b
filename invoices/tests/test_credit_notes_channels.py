"""Credit notes through the API, the portal, the console, the PDF and the email (issue 15,
item 1): customers see and download theirs; staff and keys with `invoices:write` issue
them, per line; the console needs the permission and a reason and is audited."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from accounts.models import AuditLog
from accounts.tests.factories import UserFactory
from invoices import credit_note_documents, services
from invoices.models import CreditNote
from invoices.tests.test_credit_notes import org, taxed_invoice  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice(org):  # noqa: F811
    return taxed_invoice(org, ["4.99", "4.99", "4.99"])


def test_staff_credit_chosen_lines_through_the_api(invoice, platform_api):
    body = {"reason": "Two servers were down", "lines": [{"line": 1}, {"line": 2, "amount": "2.00"}]}
    response = platform_api.post(f"/api/v1/invoices/{invoice.pk}/credit-notes", body, format="json")
    assert response.status_code == 201, response.content
    note = response.json()
    assert [(ln["invoice_line"], ln["amount"], ln["tax_amount"]) for ln in note["lines"]] == [
        (1, "4.990000000000", "1.050000000000"), (2, "2.000000000000", "0.420000000000")]
    assert (note["subtotal"], note["tax_total"], note["total"]) == (
        "6.990000000000", "1.470000000000", "8.460000000000")
    # Everything left, then nothing is.
    rest = platform_api.post(f"/api/v1/invoices/{invoice.pk}/credit-notes", {"reason": "cancelled"}, format="json")
    assert rest.json()["total"] == "9.660000000000"
    again = platform_api.post(f"/api/v1/invoices/{invoice.pk}/credit-notes", {"reason": "x"}, format="json")
    assert again.status_code == 409 and "Nothing is left" in again.json()["error"]["message"]


def test_a_line_credit_beyond_what_is_left_is_a_field_error_in_the_one_error_format(invoice, platform_api):
    body = {"reason": "x", "lines": [{"line": 1, "amount": "5.00"}]}
    response = platform_api.post(f"/api/v1/invoices/{invoice.pk}/credit-notes", body, format="json")
    assert response.status_code == 409
    assert "lines.1.amount" in response.json()["error"]["fields"]
    both = platform_api.post(f"/api/v1/invoices/{invoice.pk}/credit-notes",
                             {"reason": "x", "amount": "1.00", "lines": [{"line": 1}]}, format="json")
    assert both.status_code == 400


def test_customers_list_read_and_download_their_credit_notes_but_cannot_issue_one(
        invoice, org_api, other_org, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    mine = services.credit_note_create(invoice=invoice, reason="Outage", amount=Decimal("5.00"), send=False)
    theirs = services.credit_note_create(invoice=taxed_invoice(other_org, ["9.99"]), reason="x", send=False)
    listing = org_api.get("/api/v1/credit-notes").json()
    assert [row["number"] for row in listing["results"]] == [mine.number]
    detail = org_api.get(f"/api/v1/credit-notes/{mine.pk}").json()
    assert [ln["amount"] for ln in detail["lines"]] == ["1.670000000000", "1.670000000000", "1.660000000000"]
    assert org_api.get(f"/api/v1/credit-notes/{theirs.pk}").status_code == 404
    pdf = org_api.get(f"/api/v1/credit-notes/{mine.pk}/pdf")
    assert pdf.status_code == 200 and b"".join(pdf.streaming_content).startswith(b"%PDF")
    refused = org_api.post(f"/api/v1/invoices/{invoice.pk}/credit-notes", {"reason": "x"}, format="json")
    assert refused.status_code == 403


def test_the_portal_shows_a_credit_note_and_its_pdf(invoice, org, make_member, client, settings, tmp_path):  # noqa: F811
    settings.MEDIA_ROOT = str(tmp_path)
    note = services.credit_note_create(invoice=invoice, reason="Outage on 3 September", send=False)
    client.force_login(make_member(org, "viewer").user)
    page = client.get(f"/invoices/{invoice.pk}/").content.decode()
    assert note.number in page and f"/invoices/credit-notes/{note.pk}/" in page
    detail = client.get(f"/invoices/credit-notes/{note.pk}/").content.decode()
    assert "Outage on 3 September" in detail and "€18.12" in detail
    pdf = client.get(f"/invoices/credit-notes/{note.pk}/pdf")
    assert pdf.status_code == 200 and b"".join(pdf.streaming_content).startswith(b"%PDF")


def test_a_credit_note_is_emailed_once_with_its_pdf_after_commit(invoice, mailoutbox, settings, tmp_path,
                                                                 django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = str(tmp_path)
    with django_capture_on_commit_callbacks(execute=True):
        note = services.credit_note_create(invoice=invoice, reason="Outage")
    [mail] = mailoutbox
    assert note.number in mail.subject and invoice.number in mail.subject
    assert "€18.12" in mail.body and "Outage" in mail.body
    [(name, content, kind)] = mail.attachments
    assert (name, kind) == (f"{note.number}.pdf", "application/pdf") and content.startswith(b"%PDF")
    assert credit_note_documents.credit_note_send_email(credit_note_id=note.pk) is False  # once
    assert len(mailoutbox) == 1


def test_the_console_issues_a_credit_note_per_line_with_permission_and_reason(invoice, client):
    url = f"/console/invoices/invoice/{invoice.pk}/credit-note/"
    clerk = UserFactory(is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_invoice"),
                               Permission.objects.get(codename="view_creditnote"))
    client.force_login(clerk)
    assert client.get(url).status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="credit_invoice"))
    page = client.get(url)
    assert page.status_code == 200 and "left to credit €18.12" in page.content.decode()
    no_reason = client.post(url, {"how": "lines", "rest_1": "on", "reason": ""})
    assert no_reason.status_code == 200 and not CreditNote.objects.exists()
    too_much = client.post(url, {"how": "lines", "amount_2": "6.00", "reason": "x"})
    assert "At most €4.99" in too_much.content.decode() and not CreditNote.objects.exists()
    done = client.post(url, {"how": "lines", "rest_1": "on", "quantity_2": "0.5", "reason": "Server 0 was down"})
    assert done.status_code == 302, done.content.decode()[:2000]
    note = CreditNote.objects.get()
    assert [(ln.invoice_line.position, ln.amount, ln.tax_amount) for ln in note.lines.all()] == [
        (1, Decimal("4.99"), Decimal("1.05")), (2, Decimal("2.50"), Decimal("0.53"))]
    assert note.issued_by == clerk
    assert AuditLog.objects.filter(action="invoice.credit_note_issued", reason="Server 0 was down").exists()
    spread = client.post(url, {"how": "amount", "amount": "1.00", "reason": "goodwill"})
    assert spread.status_code == 302
    assert CreditNote.objects.count() == 2
