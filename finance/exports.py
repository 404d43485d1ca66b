"""The journal out: CSV (one row per line) and DATEV's booking batch (EXTF Buchungsstapel,
format 700, category 21), one currency per file.

DATEV's field rules follow the public implementation ledermann/datev
(lib/datev/base/header.rb, lib/datev/base/booking.rb, booking_header.rb), which writes
version 700, category 21, format version 9; docs/finance.md cites it. A DATEV booking has
one account and one counter account, so each entry is split into bookings by matching
its debit lines against its credit lines in order (`_pairs`): every booking is a debit
line's account (Konto, "S") against a credit line's (Gegenkonto), and the bookings of an
entry add up to its debits exactly.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from core.csv_export import csv_rows, date_cell, money_cell, neutralise
from core.money import minor_unit_exponent
from finance.models import JournalEntry, JournalLine

ZERO = Decimal("0")

CSV_COLUMNS = ["date", "entry", "movement", "document", "text", "currency", "account", "account_name", "debit",
               "credit", "organization_id", "source"]

DATEV_FORMAT = ("EXTF", 700, 21, "Buchungsstapel", 9)
# The 116 columns of a booking, in order (ledermann/datev lib/datev/base/booking.rb).
DATEV_COLUMNS = [
    "Umsatz (ohne Soll/Haben-Kz)", "Soll/Haben-Kennzeichen", "WKZ Umsatz", "Kurs", "Basisumsatz", "WKZ Basisumsatz",
    "Konto", "Gegenkonto (ohne BU-Schlüssel)", "BU-Schlüssel", "Belegdatum", "Belegfeld 1", "Belegfeld 2", "Skonto",
    "Buchungstext", "Postensperre", "Diverse Adressnummer", "Geschäftspartnerbank", "Sachverhalt", "Zinssperre",
    "Beleglink",
    *[f"Beleginfo – {kind} {n}" for n in range(1, 9) for kind in ("Art", "Inhalt")],
    "KOST1 – Kostenstelle", "KOST2 – Kostenstelle", "Kost Menge", "EU-Land u. USt-IdNr.", "EU-Steuersatz",
    "Abw. Versteuerungsart", "Sachverhalt L+L", "Funktionsergänzung L+L", "BU 49 Hauptfunktionstyp",
    "BU 49 Hauptfunktionsnummer", "BU 49 Funktionsergänzung",
    *[f"Zusatzinformation – {kind} {n}" for n in range(1, 21) for kind in ("Art", "Inhalt")],
    "Stück", "Gewicht", "Zahlweise", "Forderungsart", "Veranlagungsjahr", "Zugeordnete Fälligkeit", "Skontotyp",
    "Auftragsnummer", "Buchungstyp", "USt-Schlüssel (Anzahlungen)", "EU-Mitgliedstaat (Anzahlungen)",
    "Sachverhalt L+L (Anzahlungen)", "EU-Steuersatz (Anzahlungen)", "Erlöskonto (Anzahlungen)", "Herkunft-Kz",
    "Leerfeld", "KOST-Datum", "SEPA-Mandatsreferenz", "Skontosperre", "Gesellschaftername", "Beteiligtennummer",
    "Identifikationsnummer", "Zeichnernummer", "Postensperre bis", "Bezeichnung", "Kennzeichen", "Festschreibung",
    "Leistungsdatum", "Datum Zuord.",
]
DATEV_PLACES = 2  # Umsatz is a Betrag with two decimal places
BUCHUNGSTEXT_MAX = 60
BELEGFELD_MAX = 12
BEZEICHNUNG_MAX = 30
# Belegfeld 1 takes letters, digits and $ % & * + - / (DATEV's rule for the OPOS key).
_BELEG_CHARS = re.compile(r"[^A-Za-z0-9$%&*+\-/]")


class ExportError(ValueError):
    pass


def journal_lines(date_from: date, date_to: date, currency: str | None) -> QuerySet[JournalLine]:
    """The lines of the entries dated [date_from, date_to] (both inclusive), in the order
    the exports write them (date, entry, line)."""
    qs = (JournalLine.objects.filter(entry__date__gte=date_from, entry__date__lte=date_to)
          .select_related("entry", "account").order_by("entry__date", "entry_id", "id"))
    return qs.filter(entry__currency=currency) if currency else qs


def journal_csv_rows(*, date_from: date, date_to: date, currency: str | None = None) -> Iterator[list[object]]:
    """One row per line, lazily (a year of lines is never built in memory), through the
    project's CSV cells: money at the currency's places, dates ISO 8601."""
    for line in journal_lines(date_from, date_to, currency).iterator(chunk_size=2000):
        yield journal_line_row(line)


def journal_line_row(line: JournalLine) -> list[object]:
    """One line as the CSV (and the reports:read API's /exports/journal) writes it, in
    CSV_COLUMNS order; `line` with its entry and account loaded (journal_lines)."""
    e = line.entry
    return [date_cell(e.date), e.pk, e.movement, e.document, e.text, e.currency, line.account.number,
            line.account.name, money_cell(line.amount, e.currency) if line.amount > 0 else "",
            money_cell(-line.amount, e.currency) if line.amount < 0 else "", line.organization_id or "", e.source]


def journal_csv(*, date_from: date, date_to: date, currency: str | None = None) -> str:
    return "".join(csv_rows(CSV_COLUMNS, journal_csv_rows(date_from=date_from, date_to=date_to, currency=currency)))


# --- DATEV ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Booking:
    amount: Decimal  # positive
    debit: str  # Konto, "S"
    credit: str  # Gegenkonto
    day: date
    document: str
    text: str


def _pairs(entry: JournalEntry, lines: list[JournalLine]) -> Iterator[Booking]:
    """Debit lines matched against credit lines in order, the smaller amount each time:
    a balanced entry always splits this way, and nothing is left on either side."""
    debits = [ln.account.number for ln in lines if ln.amount > 0]
    debit_left = [ln.amount for ln in lines if ln.amount > 0]
    credits = [ln.account.number for ln in lines if ln.amount < 0]
    credit_left = [-ln.amount for ln in lines if ln.amount < 0]
    document = datev_document(entry)
    i = j = 0
    while i < len(debits) and j < len(credits):
        amount = min(debit_left[i], credit_left[j])
        yield Booking(amount, debits[i], credits[j], entry.date, document, entry.text)
        debit_left[i] -= amount
        credit_left[j] -= amount
        if debit_left[i] == ZERO:
            i += 1
        if credit_left[j] == ZERO:
            j += 1


def bookings(date_from: date, date_to: date, currency: str) -> Iterator[Booking]:
    entry = None
    group: list[JournalLine] = []
    for line in journal_lines(date_from, date_to, currency).iterator(chunk_size=2000):
        if entry is not None and line.entry_id != entry.pk:
            yield from _pairs(entry, group)
            group = []
        entry = line.entry
        group.append(line)
    if entry is not None:
        yield from _pairs(entry, group)


def datev_document(entry: JournalEntry) -> str:
    """Belegfeld 1, at most 12 characters of DATEV's set: an invoice INV-2026-000123 is
    R2026-000123, a credit note CN-2026-000007 G2026-000007, a payment Z<id>, a refund
    E<id>; what is left (usage, grants) names the journal entry, J<id>."""
    doc = entry.document
    for prefix, letter in (("INV-", "R"), ("CN-", "G")):
        if doc.startswith(prefix):
            doc = letter + doc[len(prefix):]
            break
    else:
        if entry.payment_id and not entry.refund_id:
            doc = f"Z{entry.payment_id}"
        elif entry.refund_id:
            doc = f"E{entry.refund_id}"
        else:
            doc = f"J{entry.pk}"
    doc = _BELEG_CHARS.sub("", doc)
    if len(doc) > BELEGFELD_MAX:
        raise ExportError(f"Document {entry.document!r} does not fit DATEV's Belegfeld 1 ({BELEGFELD_MAX} characters).")
    return doc


def _text(value: str) -> str:
    """A DATEV text field: in double quotes, a quote doubled; characters CP1252 lacks
    replaced, so the file always encodes; text that a spreadsheet would run as a formula
    (an organisation named "=HYPERLINK(…)") gets a leading apostrophe, as in our CSVs
    (accountants open EXTF files in Excel too)."""
    value = str(neutralise(value)).replace('"', '""').replace("\r", " ").replace("\n", " ")
    return '"' + value.encode("cp1252", errors="replace").decode("cp1252") + '"'


def _amount(value: Decimal) -> str:
    """Umsatz with its two places; the journal's amounts are whole minor units of a
    currency with at most two (journal_datev refuses one with more)."""
    return f"{value:.2f}".replace(".", ",")


def _fiscal_year_start(day: date) -> date:
    month = settings.FINANCE_DATEV["fiscal_year_start_month"]
    year = day.year if day.month >= month else day.year - 1
    if year < date.min.year:  # 0001-01-01 with a fiscal year from July began in year 0
        raise ExportError("The range starts before the first fiscal year there is.")
    return date(year, month, 1)


def journal_datev(*, date_from: date, date_to: date, currency: str = "EUR", now: datetime | None = None) -> bytes:
    """The EXTF file (CP1252, CRLF) for one currency and a range inside one fiscal year."""
    if date_to < date_from:
        raise ExportError("The range ends before it starts.")
    start = _fiscal_year_start(date_from)
    if _fiscal_year_start(date_to) != start:
        raise ExportError("A DATEV batch lies inside one fiscal year: split the range at its start.")
    if minor_unit_exponent(currency) > DATEV_PLACES:  # its amounts would be rounded a second time
        raise ExportError(f"DATEV amounts have {DATEV_PLACES} decimal places; {currency} has "
                          f"{minor_unit_exponent(currency)}: export it as CSV.")
    conf = settings.FINANCE_DATEV
    now = (now or timezone.now()).astimezone(timezone.get_fixed_timezone(0))
    kz, version, category, name, format_version = DATEV_FORMAT
    header = [
        _text(kz), str(version), str(category), _text(name), str(format_version),
        now.strftime("%Y%m%d%H%M%S") + f"{now.microsecond // 1000:03d}",  # Erzeugt am
        "",  # Importiert: set by DATEV
        _text("RE"),  # Herkunft
        _text("cloudbill"),  # Exportiert von
        "",  # Importiert von: set by DATEV
        str(conf["adviser_number"]), str(conf["client_number"]),
        f"{start:%Y%m%d}", str(conf["account_length"]),
        f"{date_from:%Y%m%d}", f"{date_to:%Y%m%d}",
        _text(f"cloudbill {date_from:%d.%m.%Y}-{date_to:%d.%m.%Y}"[:BEZEICHNUNG_MAX]),
        _text(""),  # Diktatkürzel
        "1",  # Buchungstyp: Finanzbuchhaltung
        "0",  # Rechnungslegungszweck
        "",  # reserviert
        _text(currency),
        "", _text(""), "", "",  # reserviert
        _text("03"),  # SKR
        "", "", _text(""),  # Branchenlösung-Id, reserviert
        _text(""),  # Anwendungsinformation
    ]
    rows = [";".join(header), ";".join(_text(c) for c in DATEV_COLUMNS)]
    blanks = [""] * (len(DATEV_COLUMNS) - 14)
    for b in bookings(date_from, date_to, currency):
        rows.append(";".join([
            _amount(b.amount), _text("S"), _text(currency), "", "", "",
            b.debit, b.credit, _text(""), f"{b.day:%d%m}", _text(b.document), _text(""), "",
            _text(b.text[:BUCHUNGSTEXT_MAX]), *blanks,
        ]))
    return ("\r\n".join(rows) + "\r\n").encode("cp1252")


def parse_datev(content: bytes) -> list[list[str]]:
    """The file back as rows of unquoted cells (for the tests' validator and for staff
    checking an export)."""
    text = content.decode("cp1252")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";", quotechar='"'))
