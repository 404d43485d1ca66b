"""The journal's exports: CSV, and DATEV's booking batch checked field by field against
DATEV's rules (finance/tests/datev_rules.py), not against what the exporter meant."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.tests.factories import UserFactory
from finance.exports import ExportError, journal_csv, journal_datev, parse_datev
from finance.journal import journal_build
from finance.models import JournalEntry
from finance.tests.datev_rules import validate
from finance.tests.world import NOW

D = Decimal
NOVEMBER_DECEMBER = {"date_from": date(2026, 11, 1), "date_to": date(2026, 12, 31)}


@pytest.fixture
def built(world):
    journal_build(now=NOW)
    return world


def test_the_datev_export_of_the_fixture_follows_the_format_rules(built):
    content = journal_datev(**NOVEMBER_DECEMBER, now=datetime(2026, 12, 3, 9, 30, 1, 250000, tzinfo=UTC))
    assert validate(content) == []
    rows = parse_datev(content)
    assert rows[0][:6] == ["EXTF", "700", "21", "Buchungsstapel", "9", "20261203093001250"]
    assert rows[0][12:16] == ["20260101", "4", "20261101", "20261231"]
    assert rows[0][21] == "EUR"
    bookings = [(r[0], r[1], r[2], r[6], r[7], r[9], r[10]) for r in rows[2:]]
    # B's invoice, split into bookings: each debit line against the credit lines in order.
    invoice = built["invoice"].number.replace("INV-", "R")
    assert [b for b in bookings if b[6] == invoice and b[3] != "2400"] == [
        ("12,35", "S", "EUR", "1400", "8201", "0112", invoice),
        ("2,35", "S", "EUR", "1400", "1776", "0112", invoice),
        ("11,45", "S", "EUR", "1400", "8200", "0112", invoice),
        ("8,55", "S", "EUR", "8290", "8200", "0112", invoice),
        ("3,80", "S", "EUR", "8290", "1776", "0112", invoice),
    ]
    # Every entry's bookings add up to its debits: nothing lost in the split.
    total = sum((D(r[0].replace(",", ".")) for r in rows[2:]), D(0))
    debits = sum((ln.amount for e in JournalEntry.objects.all() for ln in e.lines.all() if ln.amount > 0), D(0))
    assert total == debits == D("208.87")


def test_the_validator_refuses_what_datev_would(built):
    content = journal_datev(**NOVEMBER_DECEMBER).decode("cp1252")
    header, columns, first, *rest = content.split("\r\n")
    cells = first.split(";")
    broken = [
        (cells[0].replace(",", "."), "Umsatz"),  # a decimal point
        ("-" + cells[0], "Umsatz"),  # a sign
        (None, "Soll/Haben"),
        (None, "Belegdatum"),
        (None, "Buchungstext"),
    ]
    variants = []
    for value, field in broken:
        c = list(cells)
        if field == "Umsatz":
            c[0] = value
        elif field == "Soll/Haben":
            c[1] = '"X"'
        elif field == "Belegdatum":
            c[9] = "3102"
        else:
            c[13] = '"' + "x" * 61 + '"'
        variants.append((field, "\r\n".join([header, columns, ";".join(c), *rest]).encode("cp1252")))
    for field, variant in variants:
        problems = validate(variant)
        assert problems and any(field in p.field for p in problems), (field, problems)
    assert any("header" in p.field for p in validate(content.replace('"EXTF";700', '"EXTF";510', 1).encode("cp1252")))


def test_text_datev_cannot_encode_is_replaced_and_quotes_are_doubled(built):
    entry = JournalEntry.objects.filter(movement="topup").first()
    JournalEntry.objects.filter(pk=entry.pk).update(text='Top-up "fast" — 東京 ' + "x" * 80)
    content = journal_datev(**NOVEMBER_DECEMBER)
    assert validate(content) == []
    row = next(r for r in parse_datev(content)[2:] if r[10] == f"Z{built['topup'].pk}" and r[6] == "1369")
    assert row[13] == 'Top-up "fast" — ?? ' + "x" * 41
    assert len(row[13]) == 60


def test_a_datev_batch_stays_inside_one_fiscal_year(built):
    with pytest.raises(ExportError, match="one fiscal year"):
        journal_datev(date_from=date(2025, 12, 1), date_to=date(2026, 1, 31))


def test_the_csv_export_has_one_row_per_line_with_debit_and_credit(built):
    rows = list(csv.DictReader(io.StringIO(journal_csv(**NOVEMBER_DECEMBER))))
    assert len(rows) == sum(e.lines.count() for e in JournalEntry.objects.all())
    topup = [r for r in rows if r["movement"] == "topup"]
    assert sorted((r["account"], r["debit"], r["credit"]) for r in topup) == [
        ("1369", "100.00", ""), ("1710", "", "100.00")]
    debit = sum((D(r["debit"]) for r in rows if r["debit"]), D(0))
    credit = sum((D(r["credit"]) for r in rows if r["credit"]), D(0))
    assert debit == credit == D("208.87")


# --- The routes --------------------------------------------------------------------------------


def _staff_client(client, *, perm: bool = True):
    user = UserFactory(is_staff=True)
    if perm:
        user.user_permissions.add(Permission.objects.get(codename="view_journalentry"))
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def test_staff_download_the_datev_file_and_the_csv(built, client):
    staff = _staff_client(client)
    response = staff.get("/console/finance/journal-datev.csv?from=2026-11-01&to=2026-12-31&currency=EUR")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=windows-1252"
    assert 'filename="EXTF_Buchungsstapel_journal-20261101-20261231_EUR.csv"' in response["Content-Disposition"]
    assert validate(response.content) == []
    response = staff.get("/console/finance/journal.csv?from=2026-11-01&to=2026-12-31")
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"date,entry,movement")


@pytest.mark.parametrize("query", ["", "?from=2026-11-01", "?from=2026-11-31&to=2026-12-01",
                                   "?from=2026-12-01&to=2026-11-01", "?from=2026-11-01&to=2026-12-01&currency=eur",
                                   # three places: DATEV's two would round the journal's fils again
                                   "?from=2026-11-01&to=2026-12-01&currency=BHD"])
def test_bad_ranges_are_a_readable_400(db, client, query):
    response = _staff_client(client).get(f"/console/finance/journal-datev.csv{query}")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")


def test_staff_without_the_journal_permission_and_customers_are_refused(db, client):
    assert _staff_client(client, perm=False).get("/console/finance/journal.csv?from=2026-11-01&to=2026-11-30"
                                                 ).status_code == 403
    client.logout()
    client.force_login(UserFactory())
    assert client.get("/console/finance/journal.csv?from=2026-11-01&to=2026-11-30").status_code == 403
    client.logout()
    response = client.get("/console/finance/journal.csv?from=2026-11-01&to=2026-11-30")
    assert response.status_code == 302 and response["Location"].startswith("/login")


@pytest.mark.parametrize(("text", "written"), [
    ("=HYPERLINK(\"http://x\")", "\"'=HYPERLINK(\"\"http://x\"\")\""),
    ("+1 refund", "\"'+1 refund\""),
    ("Top-up Acme", "\"Top-up Acme\""),
])
def test_datev_text_that_a_spreadsheet_would_run_is_neutralised(text, written):
    """Review finding: the journal CSV guarded formula-like text, the DATEV file did not
    (entry texts carry organisation names; accountants open EXTF files in Excel)."""
    from finance.exports import _text

    assert _text(text) == written


def test_a_range_from_the_first_day_there_is_with_a_fiscal_year_from_july_is_refused_not_a_500(settings):
    """Review finding: 0001-01-01 lies in a fiscal year that began in July of year 0,
    which Python's dates cannot hold."""
    from datetime import date

    from finance.exports import ExportError, journal_datev

    settings.FINANCE_DATEV = {**settings.FINANCE_DATEV, "fiscal_year_start_month": 7}
    with pytest.raises(ExportError, match="before the first fiscal year"):
        journal_datev(date_from=date(1, 1, 1), date_to=date(1, 1, 31))
