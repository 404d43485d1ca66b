"""Portal pages: invoices list, detail, PDF download, and this month's interim invoice."""

from __future__ import annotations

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render

from accounts.portal import portal_view
from invoices import rendering
from invoices.models import Invoice, InvoiceStatus
from invoices.month_to_date import month_to_date


def _own(request):
    return Invoice.objects.filter(organization=request.membership.organization).exclude(status=InvoiceStatus.DRAFT)


@portal_view("billing:read")
def index(request):
    invoices = _own(request).order_by("-period_start")
    return render(request, "invoices/index.html", {"invoices": invoices})


@portal_view("billing:read", model=Invoice)
def detail(request, pk: int):
    invoice = get_object_or_404(_own(request).select_related("organization"), pk=pk)
    ctx = rendering.invoice_context(invoice)
    ctx["credit_notes"] = invoice.credit_notes.all()
    # Payments received and money given back (refunds, lost disputes), oldest first.
    ctx["payment_history"] = sorted(
        [("Payment", p.received_at, p.reference, p.amount) for p in invoice.payments.all()]
        + [("Given back", r.reversed_at, r.reference, -r.amount) for r in invoice.payment_reversals.all()],
        key=lambda row: row[1],
    )
    return render(request, "invoices/detail.html", ctx)


@portal_view("billing:read", model=Invoice)
def pdf(request, pk: int):
    invoice = get_object_or_404(_own(request), pk=pk)
    invoice = rendering.invoice_ensure_pdf(invoice_id=invoice.pk)
    if not invoice.pdf:
        raise Http404
    return FileResponse(invoice.pdf.open("rb"), as_attachment=True, filename=rendering.pdf_filename(invoice),
                        content_type="application/pdf")


@portal_view("billing:read")
def interim(request):
    org = request.membership.organization
    mtd = month_to_date(organization=org)  # the figure and cut-off every page shows
    bill = mtd.bill
    return render(request, "invoices/interim.html", {"mtd": mtd, "bill": bill, "org": org,
                                                      "groups": rendering.line_groups(bill.lines) if bill else []})
