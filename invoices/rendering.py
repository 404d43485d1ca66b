"""The invoice PDF (WeasyPrint) and the email that carries it. Both run in a worker after
the finalizing transaction committed; both are safe to run twice."""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from core.formatting import DOCUMENT_TIME_ZONE, document_time
from core.money import ZERO, format_money
from invoices.models import Invoice, InvoiceLine, LineKind

logger = logging.getLogger(__name__)


def line_groups(lines: list) -> list[dict]:
    """Lines (stored `InvoiceLine`s or an interim bill's `Line`s) grouped by resource (or
    product), in their order, discounts last, with subtotals."""
    groups: OrderedDict[str, list] = OrderedDict()
    ordered = sorted(enumerate(lines), key=lambda il: (il[1].kind == LineKind.DISCOUNT, il[0]))
    for _, ln in ordered:
        groups.setdefault(ln.group or LineKind(ln.kind).label, []).append(ln)
    return [{"name": name, "lines": rows, "subtotal": sum((r.amount for r in rows), ZERO)} for name, rows in groups.items()]


NO_PROJECT = "No project"
OTHER_CHARGES = "Other charges"


def line_sections(lines: list) -> list[dict]:
    """The lines under project headings (issue 19): a section per project of the lines'
    resources, as they are now (the stored PDF: at issue), by name, then "No project"
    for resources in none, then "Other charges" for lines of no resource (metered
    quantities without one, minimums, discounts). Each section's lines are grouped as
    `line_groups` does. When no line's resource is in a project, one section without a
    heading: the document reads as before."""
    from invoices.sources import resource_projects

    if not lines:
        return []
    projects = resource_projects(getattr(ln, "resource_id", None) for ln in lines)
    if not any(projects.values()):
        return [{"name": "", "groups": line_groups(lines), "subtotal": sum((ln.amount for ln in lines), ZERO)}]
    parts: dict[str, list] = {}
    for ln in lines:
        rid = getattr(ln, "resource_id", None)
        name = OTHER_CHARGES if rid is None or rid not in projects else (projects[rid] or NO_PROJECT)
        parts.setdefault(name, []).append(ln)
    order = sorted(n for n in parts if n not in (NO_PROJECT, OTHER_CHARGES)) + [
        n for n in (NO_PROJECT, OTHER_CHARGES) if n in parts]
    return [{"name": n, "groups": line_groups(parts[n]), "subtotal": sum((ln.amount for ln in parts[n]), ZERO)}
            for n in order]


def tax_summary(lines: list[InvoiceLine], *, zero_rate_note: str = "") -> list[dict]:
    """Net and tax per rate; a 0 % row carries its reason (reverse charge, exemption,
    outside the scope of EU VAT)."""
    by_rate: OrderedDict[Decimal, dict] = OrderedDict()
    for ln in lines:
        row = by_rate.setdefault(ln.tax_rate, {"rate": ln.tax_rate, "base": ZERO, "tax": ZERO,
                                               "note": zero_rate_note if ln.tax_rate == ZERO else ""})
        row["base"] += ln.amount
        row["tax"] += ln.tax_amount
    return list(by_rate.values())


def settlement(invoice: Invoice, *, as_issued: bool = False) -> dict:
    """What has been paid on an invoice and what is still due, as the portal, the console
    and the PDF downloaded today show it: a paid invoice says "Amount due 0" beside its
    payments, never its amount due at issue. Payments are listed with the money given
    back (refunds, lost disputes), oldest first. `as_issued`: the figures of the document
    as it was issued and emailed (nothing paid yet), which the stored PDF keeps."""
    from invoices.selectors import credited_total

    if as_issued:
        return {"paid": ZERO, "credited": ZERO, "still_due": invoice.amount_due, "history": [], "carried_to": None,
                "carried": ZERO, "changed_since_issue": False, "current": False}
    credited = credited_total(invoice) if invoice.pk else ZERO
    rows: list[tuple[str, datetime, str, Decimal]] = [
        *(("Payment", p.received_at, p.reference, p.amount) for p in invoice.payments.all()),
        *(("Given back", r.reversed_at, r.reference, -r.amount) for r in invoice.payment_reversals.all()),
    ] if invoice.pk else []
    history = [{"kind": kind, "at": at, "reference": reference, "amount": amount}
               for kind, at, reference, amount in sorted(rows, key=lambda row: row[1])]
    carried = invoice.carried_to_id is not None
    # An unpaid balance carried to a later invoice is due there, not here.
    open_amount = max(invoice.amount_due - invoice.amount_paid - credited, ZERO)
    return {"paid": invoice.amount_paid, "credited": credited, "still_due": ZERO if carried else open_amount,
            "history": history, "carried_to": invoice.carried_to if carried else None,
            "carried": open_amount if carried else ZERO,
            "changed_since_issue": bool(history) or credited != ZERO or carried, "current": True}


def zero_rate_reason(invoice: Invoice) -> str:
    """The invoice's tax note (set by the taxes step), or for one issued before every 0 %
    treatment had a note, the reason its billed country gives."""
    if invoice.tax_note:
        return invoice.tax_note
    from invoices.tax_rules import zero_rate_note

    return zero_rate_note((invoice.billing_details or {}).get("country") or invoice.organization.country)


def invoice_context(invoice: Invoice, lines: list[InvoiceLine] | None = None, *, interim: bool = False,
                    as_issued: bool = True) -> dict:
    """The context of an invoice's documents. `as_issued` (the stored PDF) leaves out what
    happened since issue; the portal page and the PDF downloaded once it was paid, credited
    or carried pass False and show the payments and what is still due."""
    lines = lines if lines is not None else list(invoice.lines.all())
    return {
        "settlement": settlement(invoice, as_issued=as_issued),
        "invoice": invoice,
        "interim": interim,
        "seller": invoice.seller_details or dict(settings.INVOICE_SELLER),
        "buyer": invoice.billing_details,
        "groups": line_groups(lines),
        "sections": line_sections(lines),
        "taxes": tax_summary(lines, zero_rate_note=zero_rate_reason(invoice)),
        "payment": settings.INVOICE_PAYMENT_INSTRUCTIONS,
    }


@cache
def _stylesheet() -> tuple[Any, Any]:  # (weasyprint CSS, FontConfiguration); weasyprint is untyped
    """The invoice stylesheet, parsed once per process with one font configuration:
    parsing and font lookup are a large part of a render."""
    from weasyprint import CSS
    from weasyprint.text.fonts import FontConfiguration

    fonts = FontConfiguration()
    return CSS(string=render_to_string("invoices/pdf/invoice.css"), font_config=fonts), fonts


def render_invoice_pdf(invoice: Invoice, lines: list[InvoiceLine] | None = None, *, as_issued: bool = True) -> bytes:
    """The document as issued (stored and emailed), or with `as_issued=False` as it stands
    today: its payments and what is still due."""
    return render_document_pdf("invoices/pdf/invoice.html", invoice_context(invoice, lines, as_issued=as_issued))


def render_document_pdf(template: str, context: dict) -> bytes:
    """One of our documents (invoice, credit note, receipt) as a PDF, in the documents'
    one stylesheet and fonts."""
    from weasyprint import HTML

    css, fonts = _stylesheet()
    # Documents are in UTC whoever asks for one (the portal's reader may have a zone of
    # their own active), and print which zone that is.
    with document_time():
        html = render_to_string(template, {**context, "time_zone": DOCUMENT_TIME_ZONE})
    return HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf(stylesheets=[css], font_config=fonts)


def render_document_text(template: str, context: dict) -> str:
    """A document's email body: its times in UTC, as in the document."""
    with document_time():
        return render_to_string(template, context)


def pdf_file_stored(field: Any) -> bool:
    """A document's PDF is recorded and its file is still in storage."""
    name = field.name
    return name is not None and name != "" and field.storage.exists(name)


def pdf_filename(invoice: Invoice) -> str:
    return f"{invoice.number or f'draft-{invoice.pk}'}.pdf"


def _pdf_stored(invoice: Invoice) -> bool:
    return pdf_file_stored(invoice.pdf)


def invoice_ensure_pdf(*, invoice_id: int) -> Invoice:
    """Render and store the PDF of an issued invoice once. The row lock serialises a
    render started by finalization with one started by the email. A recorded PDF whose
    file is gone from storage (a lost volume, a restore without media) is rendered again
    from the invoice's frozen lines and billing details, not answered with a 500."""
    invoice = Invoice.objects.select_related("organization").get(pk=invoice_id)
    if invoice.number is None or _pdf_stored(invoice):
        return invoice
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update(no_key=True).select_related("organization").get(pk=invoice_id)
        if invoice.number is None or _pdf_stored(invoice):
            return invoice
        if invoice.pdf:
            logger.warning("invoice %s: stored PDF %s is missing; rendering it again", invoice.number,
                           invoice.pdf.name)
        data = render_invoice_pdf(invoice)
        invoice.pdf.save(pdf_filename(invoice), ContentFile(data), save=False)
        invoice.pdf_rendered_at = timezone.now()
        invoice.save(update_fields=["pdf", "pdf_rendered_at", "updated_at"])
    return invoice


def invoice_send_email(*, invoice_id: int, force: bool = False) -> bool:
    invoice = invoice_ensure_pdf(invoice_id=invoice_id)
    if invoice.emailed_at and not force:
        return False
    to = invoice.billing_details.get("billing_email") or invoice.organization.billing_email
    if not to:
        return False
    kind = "statement" if invoice.is_statement else "invoice"
    context = {"invoice": invoice, "kind": kind, "amount_due": format_money(invoice.amount_due, invoice.currency),
               "total": format_money(invoice.total, invoice.currency), "portal_url": settings.PORTAL_BASE_URL}
    message = EmailMessage(
        subject=f"Your {settings.PORTAL_BRAND} {kind} {invoice.number} for {invoice.period_label}",
        body=render_document_text("invoices/email/invoice.txt", context),
        to=[to],
    )
    invoice.pdf.open("rb")
    try:
        message.attach(pdf_filename(invoice), invoice.pdf.read(), "application/pdf")
    finally:
        invoice.pdf.close()
    message.send()
    Invoice.objects.filter(pk=invoice.pk).update(emailed_at=timezone.now())
    return True


def invoice_download_pdf(invoice: Invoice) -> bytes:
    """The copy a customer downloads (one PDF or a year's zip): the stored PDF as issued
    and emailed, or, when payments, credit notes or a carry changed it since, one showing
    what is still due (the stored file is kept unchanged)."""
    invoice = invoice_ensure_pdf(invoice_id=invoice.pk)
    if not invoice.pdf:
        raise Invoice.DoesNotExist(f"invoice {invoice.pk} has no number, so no PDF")
    if settlement(invoice)["changed_since_issue"]:
        return render_invoice_pdf(invoice, as_issued=False)
    with invoice.pdf.open("rb") as stored:
        return stored.read()
