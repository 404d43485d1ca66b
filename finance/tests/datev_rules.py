"""A validator for DATEV EXTF Buchungsstapel files, written from the field rules of the
public implementation ledermann/datev (lib/datev/base/header.rb for the 31 header fields,
lib/datev/base/booking.rb for the 116 booking fields with their types, lengths and
required flags, lib/datev/base/header/booking_header.rb for the format constants
EXTF/700/21/Buchungsstapel/9), not from our exporter: it parses the bytes and checks
each field by its rule, so a wrong export fails here whatever the exporter believes."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime

# (name, type, limit, required): type is string | integer | decimal:<precision>,<scale> | date:<format>
HEADER_RULES: list[tuple[str, str, int | None, bool]] = [
    ("DATEV-Format-KZ", "string", 4, True), ("Versionsnummer", "integer", 3, True),
    ("Datenkategorie", "integer", 2, True), ("Formatname", "string", None, True),
    ("Formatversion", "integer", 3, True), ("Erzeugt am", "date:%Y%m%d%H%M%S%f", None, True),
    ("Importiert", "empty", None, False), ("Herkunft", "string", 2, False), ("Exportiert von", "string", 25, False),
    ("Importiert von", "empty", None, False), ("Berater", "integer", 7, True), ("Mandant", "integer", 5, True),
    ("WJ-Beginn", "date:%Y%m%d", None, True), ("Sachkontenlänge", "integer", 1, True),
    ("Datum vom", "date:%Y%m%d", None, True), ("Datum bis", "date:%Y%m%d", None, True),
    ("Bezeichnung", "string", 30, False), ("Diktatkürzel", "string", 2, False), ("Buchungstyp", "integer", 1, False),
    ("Rechnungslegungszweck", "integer", 2, False), ("reserviert", "integer", None, False),
    ("WKZ", "string", 3, False), ("reserviert 2", "string", None, False), ("reserviert 3", "string", None, False),
    ("reserviert 4", "string", None, False), ("reserviert 5", "string", None, False), ("SKR", "string", None, False),
    ("Branchenlösung-Id", "integer", None, False), ("reserviert 6", "integer", None, False),
    ("reserviert 7", "string", None, False), ("Anwendungsinformation", "string", 16, False),
]
# The first 14 booking fields carry our data; the rest must be present (116 in all) and empty.
BOOKING_RULES: list[tuple[str, str, int | None, bool]] = [
    ("Umsatz (ohne Soll/Haben-Kz)", "decimal:12,2", None, True), ("Soll/Haben-Kennzeichen", "string", 1, True),
    ("WKZ Umsatz", "string", 3, False), ("Kurs", "decimal:10,6", None, False), ("Basisumsatz", "decimal:12,2", None, False),
    ("WKZ Basisumsatz", "string", 3, False), ("Konto", "integer", 9, True),
    ("Gegenkonto (ohne BU-Schlüssel)", "integer", 9, True), ("BU-Schlüssel", "string", 2, False),
    ("Belegdatum", "date:%d%m", None, True), ("Belegfeld 1", "string", 12, False), ("Belegfeld 2", "string", 12, False),
    ("Skonto", "decimal:10,2", None, False), ("Buchungstext", "string", 60, False),
]
BOOKING_FIELDS = 116


@dataclass
class Problem:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.field}: {self.message}"


def _raw_cells(line: str) -> list[str]:
    """Cells with their quotes kept: DATEV tells text (quoted) from numbers (bare)."""
    cells, cell, quoted = [], "", False
    for ch in line:
        if ch == '"':
            quoted = not quoted
            cell += ch
        elif ch == ";" and not quoted:
            cells.append(cell)
            cell = ""
        else:
            cell += ch
    cells.append(cell)
    return cells


def _unquote(raw: str) -> str:
    return next(csv.reader(io.StringIO(raw), delimiter=";", quotechar='"'), [""])[0] if raw else ""


def _check(line_no: int, name: str, rule: str, limit: int | None, required: bool, raw: str) -> list[Problem]:
    value = _unquote(raw)
    out = []
    if value == "":
        return [Problem(line_no, name, "required but empty")] if required else []
    if rule == "empty":
        return [Problem(line_no, name, "must be left empty (DATEV sets it on import)")]
    if rule == "string":
        if not (raw.startswith('"') and raw.endswith('"')):
            out.append(Problem(line_no, name, f"text must be in double quotes: {raw!r}"))
        if limit is not None and len(value) > limit:
            out.append(Problem(line_no, name, f"{len(value)} characters, at most {limit}"))
    elif rule == "integer":
        if not re.fullmatch(r"\d+", raw):
            out.append(Problem(line_no, name, f"not a bare integer: {raw!r}"))
        elif limit is not None and len(raw) > limit:
            out.append(Problem(line_no, name, f"{len(raw)} digits, at most {limit}"))
    elif rule.startswith("decimal:"):
        precision, scale = (int(x) for x in rule.split(":")[1].split(","))
        m = re.fullmatch(r"(\d+),(\d+)", raw)
        if not m or len(m[2]) != scale:
            out.append(Problem(line_no, name, f"not a decimal with a comma and {scale} places: {raw!r}"))
        elif len(m[1]) > precision - scale:
            out.append(Problem(line_no, name, f"more than {precision - scale} digits before the comma"))
        elif int(m[1]) == 0 and int(m[2]) == 0:
            out.append(Problem(line_no, name, "zero is not a valid amount"))
    elif rule.startswith("date:"):
        fmt = rule.split(":", 1)[1]
        try:
            datetime.strptime(raw, fmt)
        except ValueError:
            if fmt != "%d%m" or not _ddmm(raw):
                out.append(Problem(line_no, name, f"not a date of the form {fmt}: {raw!r}"))
    return out


def _ddmm(raw: str) -> bool:
    # DDMM without a year: 2902 is valid (the year comes from the batch).
    return bool(re.fullmatch(r"\d{4}", raw)) and 1 <= int(raw[2:]) <= 12 and 1 <= int(raw[:2]) <= 31


def validate(content: bytes) -> list[Problem]:
    """Every way the file breaks the rules; empty when it is a valid booking batch."""
    try:
        text = content.decode("cp1252")
    except UnicodeDecodeError as exc:
        return [Problem(0, "file", f"not CP1252: {exc}")]
    if not text.endswith("\r\n"):
        return [Problem(0, "file", "lines end with CRLF")]
    lines = text[:-2].split("\r\n")
    problems = []
    header = _raw_cells(lines[0])
    if len(header) != len(HEADER_RULES):
        problems.append(Problem(1, "header", f"{len(header)} fields, expected {len(HEADER_RULES)}"))
    for (name, rule, limit, required), raw in zip(HEADER_RULES, header, strict=False):
        problems += _check(1, name, rule, limit, required, raw)
    if header[:5] != ['"EXTF"', "700", "21", '"Buchungsstapel"', "9"]:
        problems.append(Problem(1, "header", f"not EXTF 700 / 21 Buchungsstapel format 9: {header[:5]}"))
    account_length = int(header[13]) if header[13].isdigit() else 4
    date_from = datetime.strptime(header[14], "%Y%m%d").date() if header[14].isdigit() else None
    date_to = datetime.strptime(header[15], "%Y%m%d").date() if header[15].isdigit() else None
    columns = [_unquote(c) for c in _raw_cells(lines[1])]
    if len(columns) != BOOKING_FIELDS or columns[:len(BOOKING_RULES)] != [r[0] for r in BOOKING_RULES]:
        problems.append(Problem(2, "columns", "the column line is not the 116 booking fields in order"))
    for n, line in enumerate(lines[2:], start=3):
        cells = _raw_cells(line)
        if len(cells) != BOOKING_FIELDS:
            problems.append(Problem(n, "booking", f"{len(cells)} fields, expected {BOOKING_FIELDS}"))
            continue
        for (name, rule, limit, required), raw in zip(BOOKING_RULES, cells, strict=False):
            problems += _check(n, name, rule, limit, required, raw)
        if _unquote(cells[1]) not in ("S", "H"):
            problems.append(Problem(n, "Soll/Haben-Kennzeichen", f"S or H, not {cells[1]!r}"))
        for i in (6, 7):
            if cells[i].isdigit() and len(cells[i]) not in (account_length, account_length + 1):
                problems.append(Problem(n, BOOKING_RULES[i][0], f"{cells[i]} is not {account_length} digits long "
                                        "(a personal account at most one more)"))
        if cells[6] == cells[7]:
            problems.append(Problem(n, "Gegenkonto (ohne BU-Schlüssel)", "the same as Konto"))
        beleg = _unquote(cells[10])
        if beleg and not re.fullmatch(r"[A-Za-z0-9$%&*+\-/]+", beleg):
            problems.append(Problem(n, "Belegfeld 1", f"characters outside DATEV's set: {beleg!r}"))
        if date_from and date_to and _ddmm(cells[9]):
            day, month = int(cells[9][:2]), int(cells[9][2:])
            candidates = {datetime(y, month, day).date() for y in {date_from.year, date_to.year}
                          if _valid(y, month, day)}
            if not any(date_from <= c <= date_to for c in candidates):
                problems.append(Problem(n, "Belegdatum", f"{cells[9]} lies outside the batch {date_from}..{date_to}"))
        if any(c for c in cells[len(BOOKING_RULES):]):
            problems.append(Problem(n, "booking", "fields after Buchungstext are not empty"))
    return problems


def _valid(y: int, m: int, d: int) -> bool:
    try:
        datetime(y, m, d)
    except ValueError:
        return False
    return True
