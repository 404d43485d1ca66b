"""Receipts: every succeeded payment, a credit top-up or an invoice payment, gets one,
with its own number (`RCT-2026-000001`, gapless per year), a PDF and an email.

`receipt_issue` runs inside the transaction that moves the payment to `succeeded`
(`payments.settlement.apply_payment`, once per payment under its row lock): the number
is taken there, so a rollback gives it back, and the email is handed to the outbox in the
same transaction. The PDF and the email run in a worker after commit, like an invoice's;
both are safe to run twice, and the email is sent once (`emailed_at` is claimed before
sending and released if sending fails, so a retry sends it).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from core.money import format_money
from payments.models import Flow, Payment, Purpose, Receipt

logger = logging.getLogger(__name__)

RECEIPT_SERIES = "RCT"


def payment_method_label(payment: Payment) -> str:
    if payment.flow == Flow.BANK_TRANSFER:
        return f"Bank transfer {payment.reference}".strip()[:100]
    if payment.payment_method is not None:
        return str(payment.payment_method)[:100]
    return payment.get_provider_display()[:100]


def receipt_issue(*, payment: Payment) -> Receipt:
    """The receipt of a payment that just succeeded, numbered now; a second call returns
    the first receipt. Call it in the transaction that recorded the payment."""
    from core import outbox
    from invoices.numbering import next_number
    from invoices.services.lifecycle import billing_snapshot, seller_snapshot

    existing = Receipt.objects.filter(payment=payment).first()
    if existing is not None:
        return existing
    now = timezone.now()
    paid_at = payment.succeeded_at or now
    invoice = payment.invoice if payment.purpose == Purpose.INVOICE else None
    receipt = Receipt.objects.create(
        payment=payment, organization=payment.organization, receipt_number=next_number(RECEIPT_SERIES, paid_at.year),
        purpose=payment.purpose, amount=payment.amount, currency=payment.currency, paid_at=paid_at,
        method=payment_method_label(payment), invoice_number=(invoice.number or "") if invoice else "",
        billing_details=billing_snapshot(payment.organization), seller_details=seller_snapshot(), issued_at=now,
    )
    outbox.enqueue("payments.receipt_email", receipt.pk)
    return receipt


def receipt_context(receipt: Receipt) -> dict:
    return {"receipt": receipt, "seller": receipt.seller_details or dict(settings.INVOICE_SELLER),
            "buyer": receipt.billing_details, "prepaid": receipt.billing_details.get("billing_mode") == "prepaid"}


def render_receipt_pdf(receipt: Receipt) -> bytes:
    from invoices.rendering import render_document_pdf

    return render_document_pdf("payments/receipts/receipt.html", receipt_context(receipt))


def receipt_filename(receipt: Receipt) -> str:
    return f"{receipt.receipt_number}.pdf"


def _pdf_stored(receipt: Receipt) -> bool:
    from invoices.rendering import pdf_file_stored

    return pdf_file_stored(receipt.pdf)


def receipt_ensure_pdf(*, receipt_id: int) -> Receipt:
    """Render and store the PDF once (again if its file went missing from storage)."""
    receipt = Receipt.objects.get(pk=receipt_id)
    if _pdf_stored(receipt):
        return receipt
    with transaction.atomic():
        receipt = Receipt.objects.select_for_update().get(pk=receipt_id)
        if _pdf_stored(receipt):
            return receipt
        receipt.pdf.save(receipt_filename(receipt), ContentFile(render_receipt_pdf(receipt)), save=False)
        receipt.pdf_rendered_at = timezone.now()
        receipt.save(update_fields=["pdf", "pdf_rendered_at"])
    return receipt


def receipt_send_email(*, receipt_id: int) -> bool:
    """Email the receipt with its PDF, once. Another run (the outbox delivers at least
    once) finds `emailed_at` claimed and sends nothing."""
    receipt = receipt_ensure_pdf(receipt_id=receipt_id)
    to = receipt.billing_details.get("billing_email") or receipt.organization.billing_email
    if not to:
        return False
    now = timezone.now()
    if not Receipt.objects.filter(pk=receipt.pk, emailed_at__isnull=True).update(emailed_at=now):
        return False
    from invoices.rendering import render_document_text

    what = "credit top-up" if receipt.purpose == Purpose.TOPUP else f"payment of invoice {receipt.invoice_number}"
    context = {"receipt": receipt, "what": what, "amount": format_money(receipt.amount, receipt.currency),
               "portal_url": settings.PORTAL_BASE_URL}
    message = EmailMessage(
        subject=f"Your {settings.PORTAL_BRAND} receipt {receipt.receipt_number}: {context['amount']} received",
        body=render_document_text("payments/receipts/receipt_email.txt", context),
        to=[to],
    )
    try:
        with receipt.pdf.open("rb") as pdf:
            message.attach(receipt_filename(receipt), pdf.read(), "application/pdf")
        message.send()
    except Exception:
        Receipt.objects.filter(pk=receipt.pk, emailed_at=now).update(emailed_at=None)
        raise
    return True
