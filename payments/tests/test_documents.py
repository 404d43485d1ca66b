"""What customers paid, on paper (issue 15, items 6 and 7): a paid invoice says nothing is
due and shows its payment, and every payment, top-ups included, gets a numbered receipt
with a PDF and one email."""

from __future__ import annotations

import os
import re
from decimal import Decimal
from html import unescape

import pytest
from django.template.loader import render_to_string

from invoices import rendering
from payments import receipts, services
from payments.models import Provider, Purpose, Receipt
from payments.tests.conftest import return_urls

pytestmark = pytest.mark.django_db


def text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).replace("\xa0", " ").split())


def dump(name: str, pdf: bytes) -> None:
    """DOCS_PDF_DIR=/tmp/x keeps the PDFs a test rendered, to look at them."""
    if os.environ.get("DOCS_PDF_DIR"):
        with open(os.path.join(os.environ["DOCS_PDF_DIR"], name), "wb") as out:
            out.write(pdf)


@pytest.fixture
def console(client, staff_user):
    client.force_login(staff_user)
    return client


def pay_by_stripe(org, fake_stripe, deliver_stripe, *, amount: str, invoice=None) -> None:
    purpose = Purpose.INVOICE if invoice is not None else Purpose.TOPUP
    payment = services.payment_start_checkout(organization=org, purpose=purpose, provider=Provider.STRIPE,
                                              amount=Decimal(amount), invoice=invoice, urls=return_urls)
    for event in fake_stripe.complete_checkout(payment.provider_checkout_id):
        assert deliver_stripe(event).status_code == 200


def test_a_paid_invoice_says_nothing_is_due_and_shows_its_payment(org, owner, client, console, fake_stripe,
                                                                   deliver_stripe, settings, tmp_path):
    """Issue 15, item 6: not "Amount due $20,000.00" beside "Paid so far $20,000.00"."""
    settings.MEDIA_ROOT = str(tmp_path)
    from accounts.models import BillingMode
    from invoices.tests.factories import make_invoice

    org.billing_mode = BillingMode.POSTPAID
    org.save()
    invoice = make_invoice(org, amounts=("20000.00",))
    pay_by_stripe(org, fake_stripe, deliver_stripe, amount="20000.00", invoice=invoice)
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    reference = invoice.payments.get().reference

    pdf = text(render_to_string("invoices/pdf/invoice.html", rendering.invoice_context(invoice, as_issued=False)))
    assert "Payments received −$20,000.00 Amount due $0.00" in pdf and reference in pdf

    console_list = console.get("/console/invoices/invoice/").content.decode()
    row = next(tr for tr in re.findall(r"<tr.*?</tr>", console_list, flags=re.S) if invoice.number in tr)
    assert re.search(r'class="field-still_due">\$0\.00<', row) and 'class="field-amount_paid">$20,000.00<' in row

    client.force_login(owner)
    detail = text(client.get(f"/invoices/{invoice.pk}/").content.decode())
    assert "Payments received −$20,000.00 Amount due $0.00" in detail and reference in detail
    listing = text(client.get("/invoices/").content.decode())
    assert f"{invoice.number} " in listing and "$20,000.00 $0.00 paid $20,000.00" in listing
    download = b"".join(client.get(f"/invoices/{invoice.pk}/pdf").streaming_content)
    assert download.startswith(b"%PDF")
    invoice.refresh_from_db()
    with invoice.pdf.open("rb") as as_issued:
        assert download != as_issued.read()  # the copy of today; the document as issued is kept
    dump("paid-invoice.pdf", download)


def test_every_payment_gets_a_numbered_receipt_with_a_pdf_and_one_email(
        org, owner, client, fake_stripe, deliver_stripe, mailoutbox, django_capture_on_commit_callbacks, settings,
        tmp_path):
    """Issue 15, item 7: a top-up and an invoice payment, each with its receipt; numbers
    run without gaps in their own series; the email is sent once however often the
    outbox delivers it."""
    from accounts.models import BillingMode
    from invoices.tests.factories import make_invoice

    settings.MEDIA_ROOT = str(tmp_path)
    org.billing_email = "ap@example.com"
    org.billing_mode = BillingMode.POSTPAID
    org.save()
    invoice = make_invoice(org, amounts=("120.00",))
    with django_capture_on_commit_callbacks(execute=True):
        pay_by_stripe(org, fake_stripe, deliver_stripe, amount="50.00")
        pay_by_stripe(org, fake_stripe, deliver_stripe, amount="120.00", invoice=invoice)

    topup, paid = Receipt.objects.order_by("id")
    year = topup.paid_at.year
    assert (topup.receipt_number, paid.receipt_number) == (f"RCT-{year}-000001", f"RCT-{year}-000002")
    assert (topup.purpose, topup.amount, paid.purpose, paid.amount, paid.invoice_number) == (
        "topup", Decimal("50.00"), "invoice", Decimal("120.00"), invoice.number)
    sent = [m for m in mailoutbox if "receipt" in m.subject]
    assert [m.subject for m in sent] == [f"Your cloudbill receipt {topup.receipt_number}: $50.00 received",
                                         f"Your cloudbill receipt {paid.receipt_number}: $120.00 received"]
    assert all(m.attachments[0][0].endswith(".pdf") and m.attachments[0][1].startswith(b"%PDF") for m in sent)
    assert "we received $50.00" in sent[0].body

    assert receipts.receipt_send_email(receipt_id=topup.pk) is False  # the outbox delivering it again
    assert len([m for m in mailoutbox if "receipt" in m.subject]) == 2

    client.force_login(owner)
    page = text(client.get("/payments/").content.decode())
    assert f"{topup.receipt_number} " in page and f"{paid.receipt_number} " in page and f"Invoice {invoice.number}" in page
    download = b"".join(client.get(f"/payments/receipts/{topup.pk}/pdf").streaming_content)
    assert download.startswith(b"%PDF")
    dump("receipt.pdf", download)

    html = text(render_to_string("payments/receipts/receipt.html", receipts.receipt_context(topup)))
    assert "Receipt" in html and topup.receipt_number in html and "Prepaid credit top-up" in html
    assert "Amount received $50.00" in html


def test_a_receipt_is_issued_once_per_payment(org, fake_stripe, deliver_stripe):
    payment = services.payment_start_checkout(organization=org, purpose=Purpose.TOPUP, provider=Provider.STRIPE,
                                              amount=Decimal("25.00"), urls=return_urls)
    events = fake_stripe.complete_checkout(payment.provider_checkout_id)
    for event in events + events:  # every event delivered twice
        deliver_stripe(event)
    assert Receipt.objects.filter(payment=payment).count() == 1
