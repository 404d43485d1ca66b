"""CSV that a spreadsheet opens as data, never as formulas.

A cell whose text begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read by
Excel, LibreOffice and Google Sheets as a formula: a resource named
`=cmd|' /C calc'!A0` became a live formula in a customer's usage export. Such text
cells get a leading apostrophe (OWASP's advice), which spreadsheets show as plain text.
Numbers are written as they are: a negative amount is data, not a formula."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, Protocol

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
