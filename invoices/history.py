"""The invoice list's search and filters, and its downloads: the list as CSV and a
year's PDFs as one zip. Every query starts from the member's own organisation."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import timedelta

from django.db.models import QuerySet
from django.http import Http404, HttpResponseBadRequest, StreamingHttpResponse
from django.views.decorators.http import require_GET

from accounts.portal import portal_view
from core.csv_export import csv_download, datetime_cell, money_cell
from core.forms import errors_text
from invoices import rendering, selectors
from invoices.forms import InvoiceFilterForm
from invoices.models import Invoice

CSV_HEADER = ["number", "period_start", "period_end", "status", "statement", "issued_at_utc", "due_at_utc",
              "paid_at_utc", "currency", "subtotal", "discount_total", "tax_total", "total", "credit_applied",
              "amount_due", "amount_paid", "still_due"]
MIN_YEAR, MAX_YEAR = 1, 9999  # datetime's range
CSV_AMOUNTS = ["subtotal", "discount_total", "tax_total", "total", "credit_applied", "amount_due", "amount_paid",
               "still_due"]


def filtered(request, own: QuerySet[Invoice]) -> tuple[InvoiceFilterForm, QuerySet[Invoice]]:
    """`own` cut by the list's filters, newest first, so the page and its CSV agree. An
    invalid filter lists nothing (the form carries the error): never a list that only
    looks like the answer."""
    form = InvoiceFilterForm(request.GET or None, years=selectors.invoice_years(own))
    invoices = selectors.with_still_due(own).order_by("-period_start")
    if form.is_valid():
        data = form.cleaned_data
        invoices = selectors.invoices_search(invoices, data["q"])
        if data["status"]:
            invoices = invoices.filter(status=data["status"])
        if data["year"]:
            invoices = invoices.filter(period_start__year=data["year"])
    elif form.is_bound:
        invoices = invoices.none()
    return form, invoices


@portal_view("billing:read")
@require_GET
def export_csv(request):
    """The list as CSV, with its filters: amounts as money at the currency's places,
    times ISO 8601 in UTC, periods as their first and last day."""
    org = request.membership.organization
    form, invoices = filtered(request, selectors.portal_invoices(org))
    if form.is_bound and not form.is_valid():
        return HttpResponseBadRequest(errors_text(form), content_type="text/plain; charset=utf-8")
    rows = ([inv.number, inv.period_start.date().isoformat(), _last_day(inv), inv.status, "yes" if inv.is_statement else "no", datetime_cell(inv.issued_at),
             datetime_cell(inv.due_at), datetime_cell(inv.paid_at), inv.currency,
             *(money_cell(getattr(inv, name), inv.currency) for name in CSV_AMOUNTS)]
            for inv in invoices.iterator())
    return csv_download(f"invoices-{org.slug}.csv", CSV_HEADER, rows)


def _last_day(invoice: Invoice) -> str:
    """The period's last day: periods end at the next month's first instant, exclusive."""
    return (invoice.period_end - timedelta(microseconds=1)).date().isoformat()


class _Chunks:
    """A write-only stream for zipfile: what it wrote since the last `take()`."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def zip_of_pdfs(invoices: list[Invoice]) -> Iterator[bytes]:
    """The PDFs as a zip, each sent as soon as it is written, so a year is never held in
    memory whole. PDFs are compressed already: stored, not deflated."""
    out = _Chunks()
    with zipfile.ZipFile(out, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for invoice in invoices:
            archive.writestr(rendering.pdf_filename(invoice), rendering.invoice_download_pdf(invoice))
            yield out.take()
    yield out.take()  # the central directory


@portal_view("billing:read")
@require_GET
def year_pdfs(request, year: int):
    """Every invoice whose period falls in `year` (UTC), the copies one PDF download gives."""
    if not MIN_YEAR <= year <= MAX_YEAR:  # a year datetime cannot hold is no year of invoices, not a 500
        raise Http404("No invoices for that year.")
    org = request.membership.organization
    invoices = list(selectors.portal_invoices(org).filter(period_start__year=year).order_by("period_start"))
    if not invoices:
        raise Http404("No invoices for that year.")
    response = StreamingHttpResponse(zip_of_pdfs(invoices), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="invoices-{org.slug}-{year}.zip"'
    return response


# The year in the URL is not an object of any organisation: the page is cut to the
# member's own invoices like the list (tested: test_history.py, another organisation's
# year is a 404 and its zip holds only one's own invoices).
year_pdfs.tenant_isolation_exempt = "a year, not an object id; scoped like the list (invoices/tests/test_history.py)"
