"""Receivables on a small fixture of real invoices (issued, paid, credited and written off
through the invoices services), aged as of 1 Dec 2026 00:00 UTC unless a test says so.

P (EUR, postpaid, due on issue):
- i1 100.00 issued 31 Oct 10:00: 31 days past due on 1 Dec (31–60), 30 on 30 Nov (1–30).
- i2 80.00 issued 1 Nov 00:00: 30 days past due (1–30); 30.00 paid on 20 Nov, 10.00 paid
  at 1 Dec 00:00 exactly (after the instant: not yet counted).
- i3 119.00 (100.00 + 19 % tax) issued 30 Nov 23:00, credit note 23.80 (20.00 + 3.80) at
  23:30: 95.20 owed, 1 day past due.
- i4 50.00 issued 1 Dec 00:00 exactly: not issued yet as of 1 Dec 00:00.
Q (EUR, postpaid, 14 days' terms):
- q1 30.00 issued 1 Aug, due 15 Aug: 108 days (over 90); q2 40.00 issued 1 Sep, due
  15 Sep: 77 days (61–90); q3 25.00 issued 25 Nov, due 9 Dec: current.
- q0 60.00 issued 30 Jun (due 14 Jul), written off on 10 Nov: excluded.
U (USD, postpaid): u1 70.00 issued 5 Nov.

As of 1 Dec, range [1 Nov, 1 Dec) (30 days): P owes 145.20 (1–30) + 100.00 (31–60) =
245.20 on 199.00 invoiced: DSO 245.20 / 199.00 × 30 = 36.96… → 37.0. Q owes 25.00 +
40.00 + 30.00 = 95.00 on 25.00 invoiced: 114.0. Together 340.20 on 224.00: 45.5625 → 45.6.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from accounts.models import BillingMode
from accounts.tests.factories import OrganizationFactory
from finance.reports.base import ReportParams
from finance.reports.receivables import dso
from finance.reports.registry import reports
from invoices import services as invoice_services
from invoices.models import LineKind
from invoices.pipeline import SCHEDULED, Bill, BillingContext, Line, month_bounds
from invoices.services.credit_notes import LineCredit

D = Decimal
BUCKETS = ("current", "d1_30", "d31_60", "d61_90", "d90_plus", "total", "invoiced")


def t(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def issue(org, month: int, amount: str, *, issued: datetime, tax: str = "0.00", currency: str = "EUR"):
    start, end = month_bounds(2026, month)
    bill = Bill(organization=org, currency=currency)
    bill.add(Line(kind=LineKind.RECURRING, description="Support plan", amount=D(amount), quantity=D(1), unit="month",
                  unit_price=D(amount), tax_rate=D(19) if tax != "0.00" else D(0), tax_amount=D(tax)))
    bill.subtotal = D(amount)
    bill.tax_total = D(tax)
    bill.total = bill.amount_due = D(amount) + D(tax)
    ctx = BillingContext(mode=SCHEDULED, period_start=start, period_end=end, span_start=start, span_end=end,
                         organization_ids=[org.pk], now=issued)
    draft = invoice_services.invoice_store_draft(bill=bill, ctx=ctx)
    return invoice_services.invoice_finalize(invoice=draft, render_pdf=False, now=issued)


@pytest.fixture
def ledger(db, time_machine):
    time_machine.move_to(t(12, 3, 9), tick=False)
    p = OrganizationFactory(name="P", currency="EUR", country="DE", billing_mode=BillingMode.POSTPAID,
                            payment_terms_days=0)
    q = OrganizationFactory(name="Q", currency="EUR", country="DE", billing_mode=BillingMode.POSTPAID,
                            payment_terms_days=14)
    u = OrganizationFactory(name="U", currency="USD", country="US", billing_mode=BillingMode.POSTPAID)
    i1 = issue(p, 8, "100.00", issued=t(10, 31, 10))
    i2 = issue(p, 9, "80.00", issued=t(11, 1))
    i3 = issue(p, 10, "100.00", tax="19.00", issued=t(11, 30, 23))
    i4 = issue(p, 11, "50.00", issued=t(12, 1))
    invoice_services.invoice_record_payment(invoice=i2, amount=D("30.00"), reference="bank:1", received_at=t(11, 20))
    invoice_services.invoice_record_payment(invoice=i2, amount=D("10.00"), reference="bank:2", received_at=t(12, 1))
    time_machine.move_to(t(11, 30, 23, 30), tick=False)
    note = invoice_services.credit_note_create(invoice=i3, reason="Started late",
                                               lines=[LineCredit(position=1, amount=D("20.00"))], send=False)
    assert note.total == D("23.80")
    q0 = issue(q, 6, "60.00", issued=t(6, 30))
    issue(q, 7, "30.00", issued=t(8, 1))
    issue(q, 8, "40.00", issued=t(9, 1))
    issue(q, 11, "25.00", issued=t(11, 25))
    time_machine.move_to(t(11, 10), tick=False)
    invoice_services.invoice_mark_uncollectible(invoice=q0, reason="Customer unreachable")
    issue(u, 11, "70.00", issued=t(11, 5), currency="USD")
    time_machine.move_to(t(12, 3, 9), tick=False)
    return {"p": p, "q": q, "u": u, "i1": i1, "i4": i4}


def aged(start: date, end: date, currency: str = "EUR", **kw):
    return reports()["receivables"].compute(ReportParams(start=start, end=end, currency=currency, **kw))


def figures(row: dict) -> list[str]:
    return [str(row[k]) for k in BUCKETS]


def test_ageing_as_of_the_range_end_by_hand(ledger):
    report = aged(date(2026, 11, 1), date(2026, 12, 1))
    p, q = report.rows
    assert (p["customer"], q["customer"]) == ("P", "Q")
    assert figures(p) == ["0.00", "145.20", "100.00", "0.00", "0.00", "245.20", "199.00"]
    assert figures(q) == ["25.00", "0.00", "0.00", "40.00", "30.00", "95.00", "25.00"]
    assert (p["dso"], q["dso"]) == (D("37.0"), D("114.0"))
    assert report.totals is not None
    assert figures(report.totals) == ["25.00", "145.20", "100.00", "40.00", "30.00", "340.20", "224.00"]
    assert report.totals["dso"] == D("45.6")
    assert report.chart is not None
    assert report.chart.series[0].values == [D("25.00"), D("145.20"), D("100.00"), D("40.00"), D("30.00")]


def test_exactly_30_days_is_1_to_30_and_31_is_31_to_60(ledger):
    """i1 was due on 31 Oct: 30 days past due as of 30 Nov, 31 as of 1 Dec."""
    one = ledger["i1"].organization_id
    before = aged(date(2026, 11, 1), date(2026, 11, 30), organization_id=one).rows[0]
    # i2 (50.00 after its partial payment, 29 days) beside i1; i3 not issued yet.
    assert figures(before)[:6] == ["0.00", "150.00", "0.00", "0.00", "0.00", "150.00"]
    after = aged(date(2026, 11, 1), date(2026, 12, 1), organization_id=one).rows[0]
    assert (after["d1_30"], after["d31_60"]) == (D("145.20"), D("100.00"))


def test_the_range_end_is_an_open_bound(ledger):
    """A payment and an invoice at 1 Dec 00:00 exactly count from the day after's range on."""
    one = ledger["p"].pk
    next_day = aged(date(2026, 11, 1), date(2026, 12, 2), organization_id=one).rows[0]
    # i2 is 40.00 now and 31 days past due beside i1; i4 (issued at 00:00, due at once) is
    # 1 day past due beside i3.
    assert figures(next_day)[:6] == ["0.00", "145.20", "140.00", "0.00", "0.00", "285.20"]
    assert next_day["invoiced"] == D("249.00")


def test_partial_payments_and_credit_notes_reduce_what_is_owed(ledger):
    report = aged(date(2026, 11, 1), date(2026, 12, 1), organization_id=ledger["p"].pk)
    # 80.00 − 30.00 paid + 119.00 − 23.80 credited = 145.20 in 1–30.
    assert report.rows[0]["d1_30"] == D("80.00") - D("30.00") + D("119.00") - D("23.80")


def test_written_off_invoices_are_excluded_and_said_so(ledger):
    report = aged(date(2026, 11, 1), date(2026, 12, 1), organization_id=ledger["q"].pk)
    assert report.rows[0]["total"] == D("95.00")
    assert any("1 written-off invoice still owing €60.00" in n for n in report.notes)
    # Before its write-off (10 Nov) it was owed: as of 10 Oct, 88 days past its due date
    # of 14 Jul; q1 56 days past 15 Aug, q2 25 days past 15 Sep.
    earlier = aged(date(2026, 10, 1), date(2026, 10, 10), organization_id=ledger["q"].pk)
    assert figures(earlier.rows[0])[:6] == ["0.00", "40.00", "30.00", "60.00", "0.00", "130.00"]
    assert any("Written-off invoices are excluded (none here)" in n for n in earlier.notes)


def test_two_currencies_are_never_mixed(ledger):
    usd = aged(date(2026, 11, 1), date(2026, 12, 1), currency="USD")
    assert [r["customer"] for r in usd.rows] == ["U"]
    assert usd.totals is not None and usd.totals["total"] == D("70.00")
    eur = aged(date(2026, 11, 1), date(2026, 12, 1))
    assert "U" not in [r["customer"] for r in eur.rows]


def test_dso_formula():
    assert dso(D("245.20"), D("199.00"), 30) == D("37.0")
    assert dso(D("0.00"), D("0.00"), 30) is None
    assert dso(D("1"), D("3"), 1) == D("0.3")


def test_the_baseline_reads_the_same_sums(ledger):
    spec = reports()["receivables"]
    assert spec.baseline is not None
    rows = spec.baseline(ReportParams(start=date(2026, 11, 1), end=date(2026, 12, 1), currency="EUR"))
    assert sum(sum(r[2:7]) for r in rows) == D("340.20")  # type: ignore[attr-defined]


def test_an_empty_range_is_refused(db):
    from finance.reports.base import ReportError

    with pytest.raises(ReportError):
        aged(date(2026, 12, 1), date(2026, 12, 1))


def test_a_top_n_keeps_the_totals_of_everyone(ledger):
    report = aged(date(2026, 11, 1), date(2026, 12, 1), limit=1)
    assert [r["customer"] for r in report.rows] == ["P"]
    assert report.totals is not None and report.totals["total"] == D("340.20")
