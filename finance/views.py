"""The console's finance pages, for staff who passed their second factor and hold
`finance.view_journalentry` (both staff groups):

- the journal's exports: ?from=YYYY-MM-DD&to=YYYY-MM-DD[&currency=EUR] (the same rows
  are the reports:read API's /api/v1/exports/journal, finance/api/views.py);
- the reports: an index of every registered report (finance.reports.registry) and one
  page per report with its range form, chart, table, notes and the CSV of the same rows.
  Nothing here names a report: a report module registered later appears as it is."""

from __future__ import annotations

from datetime import date

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from core.csv_export import csv_download
from core.money import CurrencyError, validate_currency
from finance.exports import CSV_COLUMNS, ExportError, journal_csv_rows, journal_datev
from finance.reporting import (
    ReportForm,
    csv_filename,
    csv_rows,
    currencies_in_use,
    default_currency,
    default_range,
    display_cell,
    json_chart,
)
from finance.reports.base import Column, Report, ReportError, ReportSpec
from finance.reports.registry import reports

# The permission the finance pages ask for, beside the console's own gate.
PERMISSION = "finance.view_journalentry"


def _staff(request: HttpRequest) -> None:
    if not request.user.is_authenticated:
        raise _Login
    # The console's own gate (staff, second factor passed) and the right to read entries.
    if not admin.site.has_permission(request) or not request.user.has_perm(PERMISSION):
        raise PermissionDenied


class _Login(Exception):
    pass


def _range(request: HttpRequest) -> tuple[date, date, str | None]:
    try:
        date_from = date.fromisoformat(request.GET.get("from", ""))
        date_to = date.fromisoformat(request.GET.get("to", ""))
    except ValueError:
        raise ExportError("Give the range as from=YYYY-MM-DD&to=YYYY-MM-DD.") from None
    currency = request.GET.get("currency") or None
    if currency is not None:
        try:
            validate_currency(currency)
        except CurrencyError as exc:
            raise ExportError(str(exc)) from None
    if date_to < date_from:
        raise ExportError("The range ends before it starts.")
    return date_from, date_to, currency


def _export(request: HttpRequest, kind: str) -> HttpResponse | StreamingHttpResponse:
    try:
        _staff(request)
    except _Login:
        return redirect_to_login(request.get_full_path())
    try:
        date_from, date_to, currency = _range(request)
        name = f"journal-{date_from:%Y%m%d}-{date_to:%Y%m%d}"
        if kind == "csv":
            return csv_download(f"{name}.csv", CSV_COLUMNS,
                                journal_csv_rows(date_from=date_from, date_to=date_to, currency=currency))
        body = journal_datev(date_from=date_from, date_to=date_to, currency=currency or "EUR")
    except ExportError as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    response = HttpResponse(body, content_type="text/csv; charset=windows-1252")
    response["Content-Disposition"] = f'attachment; filename="EXTF_Buchungsstapel_{name}_{currency or "EUR"}.csv"'
    return response


@require_GET
def journal_export_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    return _export(request, "csv")


@require_GET
def journal_export_datev(request: HttpRequest) -> HttpResponse:
    return _export(request, "datev")


# --- Reports ------------------------------------------------------------------------------


def _spec(name: str) -> ReportSpec:
    spec = reports().get(name)
    if spec is None:
        raise Http404(f"No report {name!r}.")
    return spec


def _defaults() -> dict[str, str]:
    start, last = default_range(timezone.now().date())
    return {"from": start.isoformat(), "to": last.isoformat(), "currency": default_currency()}


def _form(request: HttpRequest, spec: ReportSpec) -> ReportForm:
    """The report's form bound to the query string; a page opened without one (from the
    index) gets last month to today in the most used currency."""
    data = request.GET.copy()
    if not any(key in data for key in ("from", "to", "currency")):
        data.update(_defaults())
    return ReportForm(spec, data)


def _compute(form: ReportForm) -> Report | None:
    if not form.is_valid():
        return None
    try:
        return form.spec.compute(form.params())
    except ReportError as exc:
        form.add_error(None, str(exc))
        return None


# Kinds the template writes through its filters (|money, |rate, |when); the others are
# written by display_cell (counts, quantities, percentages, days, text).
FILTERED_KINDS = ("money", "rate", "date", "month")


def _cell(value: object, column: Column, currency: str) -> tuple[str, object, bool]:
    """(how the template writes it, the value, right-aligned)."""
    numeric = column.kind not in ("text", "date", "month")
    if value is None or value == "":
        return "text", display_cell(None, column, currency), numeric
    if column.kind in FILTERED_KINDS and (column.kind in ("money", "rate") or isinstance(value, date)):
        return column.kind, value, numeric
    return "text", display_cell(value, column, currency), numeric


def _table(report: Report) -> dict:
    currency = report.params.currency
    columns = report.columns
    body = [[_cell(row.get(c.key), c, currency) for c in columns] for row in report.rows]
    totals = None
    if report.totals is not None and report.rows:
        totals = [_cell(report.totals.get(c.key), c, currency) if c.key in report.totals
                  else ("text", "", False) for c in columns]
        if columns and columns[0].key not in report.totals:
            totals[0] = ("text", "Total", False)
    return {"columns": [(c, c.kind not in ("text", "date", "month")) for c in columns], "body": body,
            "totals": totals, "currency": currency}


def _login_or_staff(request: HttpRequest) -> HttpResponse | None:
    try:
        _staff(request)
    except _Login:
        return redirect_to_login(request.get_full_path())
    return None


@require_GET
def reports_index(request: HttpRequest) -> HttpResponse:
    refused = _login_or_staff(request)
    if refused is not None:
        return refused
    return TemplateResponse(request, "admin/finance/reports/index.html", {
        **admin.site.each_context(request), "title": "Reports", "reports": list(reports().values()),
    })


@require_GET
def report_page(request: HttpRequest, name: str) -> HttpResponse:
    refused = _login_or_staff(request)
    if refused is not None:
        return refused
    spec = _spec(name)
    form = _form(request, spec)
    report = _compute(form)
    query = form.data.urlencode() if hasattr(form.data, "urlencode") else ""
    return TemplateResponse(request, "admin/finance/reports/report.html", {
        **admin.site.each_context(request), "title": spec.title, "spec": spec, "form": form, "report": report,
        "table": _table(report) if report is not None else None,
        "chart": json_chart(report) if report is not None else None,
        "currencies": currencies_in_use(), "all_reports": list(reports().values()),
        "csv_url": f"{reverse('finance:report_csv', args=[spec.name])}?{query}",
    }, status=200 if form.is_valid() or not form.is_bound else 400)


@require_GET
def report_csv(request: HttpRequest, name: str) -> HttpResponse | StreamingHttpResponse:
    refused = _login_or_staff(request)
    if refused is not None:
        return refused
    spec = _spec(name)
    form = _form(request, spec)
    report = _compute(form)
    if report is None:
        problems = "; ".join(f"{field}: {' '.join(errors)}" if field != "__all__" else " ".join(errors)
                             for field, errors in form.errors.items())
        return HttpResponseBadRequest(problems, content_type="text/plain; charset=utf-8")
    return csv_download(csv_filename(report), [c.label for c in report.columns], csv_rows(report))
