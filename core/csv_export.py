"""CSV that a spreadsheet opens as data, never as formulas.

A cell whose text begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read by
Excel, LibreOffice and Google Sheets as a formula: a resource named
`=cmd|' /C calc'!A0` became a live formula in a customer's usage export. Such text
cells get a leading apostrophe (OWASP's advice), which spreadsheets show as plain text.
Numbers are written as they are: a negative amount is data, not a formula.

Every CSV the portal offers writes its cells through the helpers below: money at the
currency's places, 12-place amounts only in columns named `_exact`, dates ISO 8601 and
times in UTC with the `Z`."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import chain
from typing import Any, Protocol

from django.http import StreamingHttpResponse

from core.money import round_money, round_stored

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Writable(Protocol):
    def write(self, s: str, /) -> Any: ...


def neutralise(cell: object) -> object:
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


class SafeWriter:
    def __init__(self, stream: _Writable):
        self._writer = csv.writer(stream)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([neutralise(cell) for cell in row])


# --- Cells and responses: one way to write money, dates and a download --------------------


class Figure(Decimal):
    """A number cell, written in fixed point ('0.000000000000', never '0E-12'). Not text,
    so `neutralise` leaves a negative amount as a number."""

    def __str__(self) -> str:
        return format(self, "f")


def money_cell(amount: Decimal | None, currency: str) -> Figure | str:
    """An amount as money: rounded once (core.money.round_money) to the currency's
    places, 1234.50 (no symbol or grouping: a spreadsheet reads it as a number)."""
    return "" if amount is None else Figure(round_money(amount, currency))


def exact_cell(amount: Decimal | None) -> Figure | str:
    """An amount at the stored precision, 12 places, for columns that say `_exact`
    (ledger rows, rates): what was recorded, never a float's stray digits."""
    return "" if amount is None else Figure(round_stored(amount))


def datetime_cell(moment: datetime | None) -> str:
    """ISO 8601 in UTC, with the zone written: '2026-03-01T10:17:00Z'."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def date_cell(day: date | None) -> str:
    return "" if day is None else day.isoformat()


class _Line:
    """A file-like object holding the last line csv.writer wrote."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> None:
        self.text += s


def csv_rows(header: Iterable[object], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    line = _Line()
    writer = SafeWriter(line)
    for row in chain([header], rows):
        line.text = ""
        writer.writerow(row)
        yield line.text


def csv_download(filename: str, header: Iterable[object], rows: Iterable[Iterable[object]]) -> StreamingHttpResponse:
    """A CSV attachment streamed row by row (a year of ledger rows is never built in
    memory); `rows` should be a lazy iterable (a queryset's .iterator())."""
    response = StreamingHttpResponse(csv_rows(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
