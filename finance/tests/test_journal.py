"""The journal of a small world, computed by hand, cent for cent.

Two customers in EUR, Germany, through November and the first two days of December 2026:

- Prepaid A tops up 100.00 by the sandbox on 2 Nov, uses 0.999999999999 the same day
  (three runs of 0.333333333333), 0.004 on 3 Nov and 0.002 on 4 Nov, gets 5.00 of
  promotional credit on 4 Nov, uses 2.50 of it on 5 Nov; the 2.50 left expires on 6 Nov.
  Its November statement (1 Dec) is one metered usage line of 3.51, no tax. On 2 Dec it
  gets 5.00 of its top-up back (a refund that succeeded) and a second refund fails.
- Postpaid B uses 12.345678901234 on 2 Nov. Its November invoice (1 Dec): the metered
  usage line 12.35 (tax 2.35) and a monthly fee 20.00 (tax 3.80), total 38.50. A credit
  note takes 10.00 (tax 1.90) off the fee on 1 Dec; B pays 20.00 by Stripe on 2 Dec, and
  staff mark the invoice uncollectible the same day (6.60 still owed).

The cents of the ledger's 12 places, by the carry rule cents(x) = floor(x + 0.005):
A's usage books 1.00 on 2 Nov (100 → 99.000000000001), nothing on 3 Nov (98.996… still
rounds to 99.00), 0.01 on 4 Nov (98.994… rounds to 98.99), 2.50 of promotional credit on
5 Nov; B's books 12.35 (−12.345678901234 rounds to −12.35).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from finance import journal
from finance.journal import journal_build, journal_build_day
from finance.models import JournalDay, JournalEntry, JournalLine
from finance.tests.world import NOW, at
from finance.verify import journal_check
from invoices import services as invoice_services

D = Decimal


def _journal() -> list[tuple[str, str, str, list[tuple[str, Decimal]]]]:
    out = []
    for entry in JournalEntry.objects.order_by("date", "id").prefetch_related("lines__account"):
        lines = sorted((ln.account.number, ln.amount) for ln in entry.lines.all())
        out.append((f"{entry.date:%m-%d}", entry.movement, entry.organization.name if entry.organization else "",
                    lines))
    return sorted(out, key=lambda e: (e[0], e[2], e[1]))


EXPECTED = sorted([
    ("11-02", "topup", "A", [("1369", D("100.00")), ("1710", D("-100.00"))]),
    ("11-02", "usage", "A", [("1710", D("1.00")), ("8290", D("-1.00"))]),
    ("11-02", "usage", "B", [("1400", D("12.35")), ("8290", D("-12.35"))]),
    # 3 Nov: A's 0.004 rounds away to nothing yet; it is carried.
    ("11-04", "usage", "A", [("1710", D("0.01")), ("8290", D("-0.01"))]),
    ("11-04", "promo_grant", "A", [("1719", D("-5.00")), ("4600", D("5.00"))]),
    ("11-05", "usage", "A", [("1719", D("2.50")), ("8290", D("-2.50"))]),
    ("11-06", "promo_expiry", "A", [("1719", D("2.50")), ("2700", D("-2.50"))]),
    # The statement drew nothing (all metered): its usage moves to the product group.
    ("12-01", "invoice", "A", [("8201", D("-3.51")), ("8290", D("3.51"))]),
    # B's invoice: 38.50 in all, of which 12.35 was metered.
    ("12-01", "invoice", "B", [("1400", D("26.15")), ("1776", D("-3.80")), ("1776", D("-2.35")),
                               ("8200", D("-20.00")), ("8201", D("-12.35")), ("8290", D("12.35"))]),
    ("12-01", "credit_note", "B", [("1400", D("-11.90")), ("1776", D("1.90")), ("8200", D("10.00"))]),
    ("12-02", "refund", "A", [("1369", D("-5.00")), ("1710", D("5.00"))]),
    ("12-02", "invoice_payment", "B", [("1361", D("20.00")), ("1400", D("-20.00"))]),
    ("12-02", "write_off", "B", [("0998", D("-6.60")), ("2400", D("6.60"))]),
], key=lambda e: (e[0], e[2], e[1]))


def test_the_journal_of_the_fixture_is_the_hand_computed_one(world):
    days = journal_build(now=NOW)
    assert days[0] == date(2026, 11, 2) and days[-1] == date(2026, 12, 2) and len(days) == 31
    assert _journal() == EXPECTED


def test_customer_accounts_end_at_the_ledger_in_cents(world):
    journal_build(now=NOW)

    def balance(org, number):
        return sum((ln.amount for ln in JournalLine.objects.filter(organization=org, account__number=number)), D(0))

    # A: ledger 100 − 3.505999999999 + 5 − 2.5 (expired) − 5 (refund) = 93.994000000001 → 93.99, none promotional.
    assert -balance(world["a"], "1710") - balance(world["a"], "1719") == D("93.99")
    assert balance(world["a"], "1719") == D("0.00")
    # B: −12.345678901234 − 26.15 + 11.90 + 20.00 = −6.595678901234 → −6.60 owed.
    assert balance(world["b"], "1400") == D("6.60")


def test_every_day_balances_and_check_journal_agrees(world, capsys):
    journal_build(now=NOW)
    for day in JournalDay.objects.all():
        per_currency = {}
        for ln in JournalLine.objects.filter(entry__date=day.date).select_related("entry"):
            per_currency[ln.entry.currency] = per_currency.get(ln.entry.currency, D(0)) + ln.amount
        assert all(total == 0 for total in per_currency.values()), day
    call_command("check_journal")
    assert "journal agrees days=31 entries=13" in capsys.readouterr().out


def test_pending_and_failed_refunds_book_nothing(world):
    journal_build(now=NOW)
    refunds = set(JournalEntry.objects.filter(refund_id__isnull=False).values_list("refund_id", flat=True))
    assert refunds == {world["refund"].pk}


def test_a_rerun_writes_nothing(world):
    journal_build(now=NOW)
    before = (JournalEntry.objects.count(), JournalLine.objects.count())
    assert journal_build(now=NOW) == []
    assert journal_build_day(date(2026, 11, 2)) is False
    call_command("build_journal", "--date", "2026-12-02")
    assert (JournalEntry.objects.count(), JournalLine.objects.count()) == before
    assert _journal() == EXPECTED


def test_a_crash_mid_run_loses_nothing_and_the_rerun_doubles_nothing(world, monkeypatch):
    write = journal._write

    def crash_on_the_5th(day, entries):
        if day == date(2026, 11, 5):
            raise RuntimeError("worker killed")
        write(day, entries)

    monkeypatch.setattr(journal, "_write", crash_on_the_5th)
    with pytest.raises(RuntimeError):
        journal_build(now=NOW)
    assert journal.built_until() == date(2026, 11, 4)
    assert not JournalEntry.objects.filter(date__gte=date(2026, 11, 5)).exists()
    monkeypatch.setattr(journal, "_write", write)
    journal_build(now=NOW)
    assert _journal() == EXPECTED


def test_a_day_not_closed_is_refused(world):
    with pytest.raises(CommandError, match="has not closed yet"):
        call_command("build_journal", "--date", "2026-12-03")


def test_tampering_with_a_ledger_row_is_named_by_day_and_difference(world, capsys):
    journal_build(now=NOW)
    with connection.cursor() as cur:
        cur.execute("SET session_replication_role = replica")  # the append-only trigger sleeps
        cur.execute("UPDATE credits_ledgerentry SET amount = amount - 0.01 WHERE organization_id = %s"
                    " AND kind = 'usage' AND created_at = %s", [world["a"].pk, at(2, 11)])
        cur.execute("SET session_replication_role = DEFAULT")
    with pytest.raises(CommandError, match="journal disagrees"):
        call_command("check_journal")
    err = capsys.readouterr().err
    assert f"2026-11-02: organisation {world['a'].pk} EUR: ledger sum 98.990000000001, journal carried " \
           "99.000000000001, difference -0.010000000000" in err


def test_a_sub_cent_tamper_is_caught_at_the_twelfth_place(world):
    journal_build(now=NOW)
    with connection.cursor() as cur:
        cur.execute("SET session_replication_role = replica")  # the append-only trigger sleeps
        cur.execute("UPDATE credits_ledgerentry SET amount = amount + 0.000000000001 WHERE organization_id = %s"
                    " AND kind = 'usage' AND created_at = %s", [world["b"].pk, at(2, 13)])
        cur.execute("SET session_replication_role = DEFAULT")
    problems = journal_check().problems
    # Named at its day, once: every later day carries the same difference.
    assert problems == [f"2026-11-02: organisation {world['b'].pk} EUR: ledger sum -12.345678901233, journal "
                        "carried -12.345678901234, difference 0.000000000001"]


def test_a_journal_line_changed_is_caught(world):
    journal_build(now=NOW)
    line = JournalLine.objects.get(entry__movement="invoice_payment", account__number="1361")
    JournalLine.objects.filter(pk=line.pk).update(amount=D("19.99"))
    problems = journal_check().problems
    assert problems == [
        "2026-12-02: entry ledger:{} does not balance: difference -0.01 EUR".format(line.entry.source.split(":")[1]),
        "2026-12-02: EUR does not balance to zero: difference -0.01",
        f"2026-12-02: payment {world['paid'].pk}: 20.00 EUR received, journal 19.99, difference 0.01",
        # The day's stored total was written with the line as it was.
        "2026-12-02: EUR account 1361 invoice_payment: the lines sum to 19.99 in 1 line(s), the daily total says "
        "20.00 in 1",
    ]


def test_an_invoice_whose_draw_disagrees_with_its_lines_is_refused(world):
    from credits.models import LedgerEntry
    from finance.chart import JournalError

    with connection.cursor() as cur:
        cur.execute("SET session_replication_role = replica")  # the append-only trigger sleeps
        LedgerEntry.objects.filter(reference=f"invoice:{world['invoice'].pk}").update(amount=D("-26.14"))
        cur.execute("SET session_replication_role = DEFAULT")
    with pytest.raises(JournalError, match=f"invoice {world['invoice'].number}: the credit ledger moved"):
        journal_build(now=NOW)
    assert journal.built_until() == date(2026, 11, 30)


def test_a_payment_staff_recorded_without_a_provider_books_to_the_bank(world, time_machine, capsys):
    time_machine.move_to(at(2, 16, month=12), tick=False)
    invoice_services.invoice_record_payment(invoice=world["invoice"], amount=D("1.00"), reference="transfer 2026-77")
    time_machine.move_to(NOW, tick=False)
    journal_build(now=NOW)
    [entry] = JournalEntry.objects.filter(movement="invoice_payment", payment_id__isnull=True)
    assert sorted((ln.account.number, ln.amount) for ln in entry.lines.all()) == [("1200", D("1.00")),
                                                                                  ("1400", D("-1.00"))]
    call_command("check_journal")
    assert "journal agrees" in capsys.readouterr().out


def _day_totals() -> dict[tuple[str, str, str], Decimal]:
    from finance.models import JournalDayTotal

    return {(f"{t.date:%m-%d}", t.account.number, t.movement): t.amount
            for t in JournalDayTotal.objects.select_related("account")}


def test_each_built_day_stores_its_lines_summed_per_account_and_movement(world):
    journal_build(now=NOW)
    expected: dict[tuple[str, str, str], Decimal] = {}
    for day, movement, _org, lines in EXPECTED:
        for number, amount in lines:
            expected[(day, number, movement)] = expected.get((day, number, movement), D(0)) + amount
    assert _day_totals() == expected
    # 1 Dec: two invoices' 8290 lines in one total, 12.35 + 3.51.
    assert _day_totals()[("12-01", "8290", "invoice")] == D("15.86")


def test_a_day_total_that_disagrees_with_its_lines_is_caught(world):
    from finance.models import JournalDayTotal

    journal_build(now=NOW)
    total = JournalDayTotal.objects.get(date=date(2026, 12, 2), account__number="1361")
    JournalDayTotal.objects.filter(pk=total.pk).update(amount=D("19.99"))
    assert journal_check().problems == [
        "2026-12-02: EUR account 1361 invoice_payment: the lines sum to 20.00 in 1 line(s), the daily total says "
        "19.99 in 1"]
