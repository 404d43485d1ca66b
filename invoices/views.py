"""Portal pages: invoices list (search, filters, by year), detail, PDF download, and this month's interim invoice."""

from __future__ import annotations

import io
from itertools import groupby

from django.conf import settings
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django.utils.module_loading import import_string

from accounts.portal import portal_view
from invoices import history, rendering
from invoices.models import Invoice, InvoiceStatus
from invoices.month_to_date import month_to_date


def _own(request):
    return Invoice.objects.filter(organization=request.membership.organization).exclude(status=InvoiceStatus.DRAFT)


@portal_view("billing:read")
def index(request):
    """The list, searched and filtered (invoices.history), grouped by the year of the period."""
    form, invoices = history.filtered(request, _own(request))
    invoices = list(invoices)
    years = [(year, list(group)) for year, group in groupby(invoices, key=lambda inv: inv.period_start.year)]
    return render(request, "invoices/index.html", {
        "invoices": invoices, "years": years, "filters": form, "filtered": form.is_bound,
        "query": request.GET.urlencode(),
    })


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
    try:
        data = rendering.invoice_download_pdf(invoice)
    except Invoice.DoesNotExist:
        raise Http404
    return FileResponse(io.BytesIO(data), as_attachment=True, filename=rendering.pdf_filename(invoice),
                        content_type="application/pdf")


@portal_view("billing:read")
def interim(request):
    org = request.membership.organization
    mtd = month_to_date(organization=org)  # the figure and cut-off every page shows
    bill = mtd.bill
    return render(request, "invoices/interim.html", {"mtd": mtd, "bill": bill, "org": org,
                                                      "groups": rendering.line_groups(bill.lines) if bill else [],
                                                      "sections": rendering.line_sections(bill.lines) if bill else []})
