"""The journal's exports, for console staff only for now (the reports:read API comes
with the reports): ?from=YYYY-MM-DD&to=YYYY-MM-DD[&currency=EUR]."""

from __future__ import annotations

from datetime import date

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.views.decorators.http import require_GET

from core.csv_export import csv_download
from core.money import CurrencyError, validate_currency
from finance.exports import CSV_COLUMNS, ExportError, journal_csv_rows, journal_datev


def _staff(request: HttpRequest) -> None:
    if not request.user.is_authenticated:
        raise _Login
    # The console's own gate (staff, second factor passed) and the right to read entries.
    if not admin.site.has_permission(request) or not request.user.has_perm("finance.view_journalentry"):
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
