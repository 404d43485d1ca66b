"""The finance side on the demo, as a finance clerk would check it: `seed_demo` leaves
three closed months of history before last month (finance/demo.py) and the journal
built up to the last settled day; `check_journal` agrees with the ledger and the
invoices, and names the day when a ledger row is tampered with; the DATEV batch of the
demo's last complete month validates against the format's field rules; each report
has something to say over the demo's history; a second `seed_demo` adds nothing."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from credits.models import LedgerEntry
from finance.demo import history_months
from finance.exports import journal_datev, parse_datev
from finance.journal import built_until
from finance.models import JournalEntry
from finance.reports.base import ReportParams
from finance.reports.registry import reports
from finance.tests.datev_rules import validate
from invoices.models import Invoice
from payments.models import Payment

D = Decimal
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
HISTORY = {"start": date(2026, 8, 1), "end": date(2026, 12, 1)}  # the history and last month


def seed() -> None:
    with time_machine.travel(NOW, tick=False):
        call_command("seed_demo", stdout=io.StringIO())


def report(name: str, currency: str, **kwargs):
    return reports()[name].compute(ReportParams(currency=currency, grain="month", **HISTORY, **kwargs))


@pytest.mark.django_db
def test_the_demo_journal_agrees_fails_when_tampered_and_exports_datev(capsys):
    assert history_months(NOW) == [(datetime(2026, m, 1, tzinfo=UTC), datetime(2026, m + 1, 1, tzinfo=UTC))
                                   for m in (8, 9, 10)]
    seed()
    assert built_until() == date(2026, 12, 2)  # the last day settled at 09:00 on the 3rd
    counts = (JournalEntry.objects.count(), LedgerEntry.objects.count(), Invoice.objects.count(),
              Payment.objects.count())
    seed()
    assert (JournalEntry.objects.count(), LedgerEntry.objects.count(), Invoice.objects.count(),
            Payment.objects.count()) == counts  # idempotent: the history is not written twice

    call_command("check_journal")
    agrees = capsys.readouterr().out
    assert agrees.startswith("journal agrees days=124 ")  # 1 August to 2 December

    # The demo's last complete month, in each currency it bills in: a valid DATEV batch.
    for currency in ("EUR", "USD"):
        content = journal_datev(date_from=date(2026, 11, 1), date_to=date(2026, 11, 30), currency=currency,
                                now=NOW)
        assert validate(content) == [], currency
        rows = parse_datev(content)
        assert rows[0][0] == "EXTF" and rows[0][21] == currency
        assert len(rows) > 2, f"no bookings in {currency}"
    eur = parse_datev(journal_datev(date_from=date(2026, 11, 1), date_to=date(2026, 11, 30), currency="EUR",
                                    now=NOW))
    accounts = {(r[6], r[7]) for r in eur[2:]}
    # Nordlicht's October invoice issued on 1 November (receivable against revenue and
    # 19 % VAT), the bank transfer in dunning, and the write-off.
    assert ("1400", "8201") in accounts and any(counter == "1776" for _, counter in accounts)
    assert ("1200", "1400") in accounts and ("2400", "0998") in accounts

    # A ledger row changed behind the append-only trigger's back (as the journal tests do).
    row = LedgerEntry.objects.filter(kind="usage", reference__startswith="demo-finance-history:usage:",
                                     organization__slug="acme-ai").order_by("created_at").first()
    with connection.cursor() as cur:
        cur.execute("SET session_replication_role = replica")  # the append-only trigger sleeps
        cur.execute("UPDATE credits_ledgerentry SET amount = amount - 0.01 WHERE id = %s", [row.pk])
        cur.execute("SET session_replication_role = DEFAULT")
    with pytest.raises(CommandError, match="journal disagrees"):
        call_command("check_journal")
    err = capsys.readouterr().err
    assert f"{row.created_at.date()}: organisation {row.organization_id} USD: ledger sum" in err
    assert "difference -0.010000000000" in err


@pytest.mark.django_db
def test_every_report_has_something_to_say_over_the_demo_history(db):
    seed()
    usage = report("usage", "USD")
    assert {r["product"] for r in usage.rows} >= {"gpu-h100-8x", "cpu-16-64", "gpu-l40s-1x"}
    assert len({r["period"] for r in usage.rows}) == 4

    recognised: dict = {}
    for r in report("revenue", "USD").rows:
        recognised[r["period"]] = recognised.get(r["period"], D(0)) + r["recognised"]
    assert all(recognised[date(2026, m, 1)] > 0 for m in (8, 9, 10, 11)), recognised

    credit = {r["period"]: r for r in report("credit-held", "USD").rows}
    assert all(credit[m]["topups"] > 0 for m in ("2026-08", "2026-09", "2026-10"))
    assert credit["2026-11"]["refunds"] == D("-50.00")
    assert all(r["opening"] + r["topups"] + r["consumed"] + r["refunds"] + r["adjustments"] + r["other"]
               == r["closing"] for r in credit.values())

    recurring = {r["month"]: r for r in report("recurring", "USD").rows}
    assert recurring[date(2026, 8, 1)]["new"] == D("24.00")
    assert recurring[date(2026, 9, 1)]["new"] == D("12.00")  # TinyML's fee starts…
    assert recurring[date(2026, 10, 1)]["churn"] == D("-12.00")  # …and ends
    assert recurring[date(2026, 10, 1)]["expansion"] == D("24.00")  # Acme's second block
    eur_mrr = {r["month"]: r for r in report("recurring", "EUR").rows}
    assert eur_mrr[date(2026, 10, 1)]["contraction"] == D("-110.40")

    receivables = report("receivables", "EUR").rows
    assert [r["customer"] for r in receivables] == ["Nordlicht Render"]
    [nordlicht] = receivables
    # As of 1 December: the September invoice's rest is 31 days past due (31–60), the
    # October invoice is due that day (current); the August one was written off.
    assert nordlicht["d31_60"] > 0 and nordlicht["current"] > 0 and nordlicht["d1_30"] == 0

    collections = {r["period"]: r for r in report("collections", "EUR", group_by="total").rows}
    assert collections[date(2026, 10, 1)]["failed_count"] == 1
    assert collections[date(2026, 11, 1)]["dunning_recovered"] > 0
    assert collections[date(2026, 11, 1)]["written_off"] > 0
    usd = {(r["period"], r["provider"]): r for r in report("collections", "USD").rows}
    assert usd[(date(2026, 9, 1), "paypal")]["failed_count"] == 1  # TinyML's declined top-up
    assert usd[(date(2026, 11, 1), "stripe")]["refunded"] == D("50.00")
