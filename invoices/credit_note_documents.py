"""The credit note's PDF (WeasyPrint, the invoice's stylesheet) and the email that carries
it. Both run in a worker after the issuing transaction committed; both are safe to run
twice (the PDF is rendered once and stored; the email is stamped)."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from core.money import format_money, format_rate, round_money
from invoices import rendering
from invoices.models import CreditNote, CreditNoteLine

logger = logging.getLogger(__name__)


def _rows(note: CreditNote, lines: list[CreditNoteLine]) -> list[dict]:
    """Each line as a reader checks it: the quantity with its unit, the unit price at its
    full precision with the currency, and whether its tax is the rest of the invoice
    line's tax (a line credited to its end) rather than amount × rate rounded."""
    rows = []
    for ln in lines:
        as_invoice = round_money(ln.amount * ln.tax_rate / Decimal(100), note.currency)
        rows.append({
            "line": ln,
            "quantity": f"{ln.quantity.normalize():f} {ln.unit}".strip() if ln.quantity is not None else "",
            "unit_price": (f"{format_rate(ln.unit_price, note.currency)}{f' / {ln.unit}' if ln.unit else ''}"
                           if ln.unit_price is not None else ""),
            "tax_is_rest": ln.tax_amount != as_invoice,
        })
    return rows


def credit_note_context(note: CreditNote) -> dict:
    lines: list[CreditNoteLine] = list(note.lines.select_related("invoice_line"))
    rows = _rows(note, lines)
    return {
        "note": note,
        "invoice": note.invoice,
        "lines": lines,
        "rows": rows,
        "any_tax_is_rest": any(r["tax_is_rest"] for r in rows),
        "seller": note.seller_details or dict(settings.INVOICE_SELLER),
        "buyer": note.billing_details,
        "taxes": rendering.tax_summary(lines),  # type: ignore[arg-type]  # same fields as invoice lines
    }


def render_credit_note_pdf(note: CreditNote) -> bytes:
    return rendering.render_document_pdf("invoices/credit_note/pdf.html", credit_note_context(note))


def pdf_filename(note: CreditNote) -> str:
    return f"{note.number}.pdf"


def _pdf_stored(note: CreditNote) -> bool:
    return rendering.pdf_file_stored(note.pdf)


def credit_note_ensure_pdf(*, credit_note_id: int) -> CreditNote:
    """Render and store the PDF once (under the note's row lock); a recorded PDF whose
    file is gone is rendered again from the note's frozen lines."""
    note = CreditNote.objects.select_related("invoice", "organization").get(pk=credit_note_id)
    if _pdf_stored(note):
        return note
    with transaction.atomic():
        note = CreditNote.objects.select_for_update(of=("self",)).select_related("invoice", "organization").get(
            pk=credit_note_id)
        if _pdf_stored(note):
            return note
        if note.pdf:
            logger.warning("credit note %s: stored PDF %s is missing; rendering it again", note.number, note.pdf.name)
        note.pdf.save(pdf_filename(note), ContentFile(render_credit_note_pdf(note)), save=False)
        note.pdf_rendered_at = timezone.now()
        note.save(update_fields=["pdf", "pdf_rendered_at"])
    return note


def credit_note_send_email(*, credit_note_id: int, force: bool = False) -> bool:
    note = credit_note_ensure_pdf(credit_note_id=credit_note_id)
    if note.emailed_at and not force:
        return False
    to = note.billing_details.get("billing_email") or note.organization.billing_email
    if not to:
        return False
    context = {"note": note, "invoice": note.invoice, "total": format_money(note.total, note.currency),
               "portal_url": settings.PORTAL_BASE_URL}
    message = EmailMessage(
        subject=f"Your {settings.PORTAL_BRAND} credit note {note.number} on invoice {note.invoice.number}",
        body=rendering.render_document_text("invoices/credit_note/email.txt", context),
        to=[to],
    )
    note.pdf.open("rb")
    try:
        message.attach(pdf_filename(note), note.pdf.read(), "application/pdf")
    finally:
        note.pdf.close()
    message.send()
    CreditNote.objects.filter(pk=note.pk).update(emailed_at=timezone.now())
    return True
