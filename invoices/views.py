"""Portal pages: invoices list, detail, PDF download, and this month's interim invoice."""

from __future__ import annotations

import io

from django.conf import settings
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django.utils.module_loading import import_string

from accounts.portal import portal_view
from invoices import rendering, selectors
from invoices.models import Invoice, InvoiceStatus
from invoices.month_to_date import month_to_date


def _own(request):
    return Invoice.objects.filter(organization=request.membership.organization).exclude(status=InvoiceStatus.DRAFT)


@portal_view("billing:read")
def index(request):
    invoices = selectors.with_still_due(_own(request)).order_by("-period_start")
    return render(request, "invoices/index.html", {"invoices": invoices})


@portal_view("billing:read", model=Invoice)
def detail(request, pk: int):
    invoice = get_object_or_404(_own(request).select_related("organization"), pk=pk)
    ctx = rendering.invoice_context(invoice, as_issued=False)
    ctx["credit_notes"] = invoice.credit_notes.all()
    # Panels of the apps after invoices (payments' Pay panel), named in settings.
    ctx["panels"] = [panel for path in settings.INVOICE_DETAIL_PANELS
                     if (panel := import_string(path)(request, invoice))]
    return render(request, "invoices/detail.html", ctx)


@portal_view("billing:read", model=Invoice)
def pdf(request, pk: int):
    invoice = get_object_or_404(_own(request), pk=pk)
    invoice = rendering.invoice_ensure_pdf(invoice_id=invoice.pk)
    if not invoice.pdf:
        raise Http404
    if rendering.settlement(invoice)["changed_since_issue"]:
        # Paid, partly paid, credited or carried since it was issued: the copy downloaded
        # now shows the payments and what is still due (the stored PDF, as issued and
        # emailed, is kept unchanged).
        return FileResponse(io.BytesIO(rendering.render_invoice_pdf(invoice, as_issued=False)), as_attachment=True,
                            filename=rendering.pdf_filename(invoice), content_type="application/pdf")
    return FileResponse(invoice.pdf.open("rb"), as_attachment=True, filename=rendering.pdf_filename(invoice),
                        content_type="application/pdf")


@portal_view("billing:read")
def interim(request):
    org = request.membership.organization
    mtd = month_to_date(organization=org)  # the figure and cut-off every page shows
    bill = mtd.bill
    return render(request, "invoices/interim.html", {"mtd": mtd, "bill": bill, "org": org,
                                                      "groups": rendering.line_groups(bill.lines) if bill else []})
