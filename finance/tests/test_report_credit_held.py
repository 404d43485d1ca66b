"""Customer credit held over the journal tests' world (finance/tests/world.py), plus a
staff adjustment for A on 10 Nov and a USD organisation C, built as of 3 Dec.

A (prepaid, EUR), by hand, in the journal's cents (docs/finance.md):
- 2 Nov: top-up 100.00; usage 3 × 0.333333333333 takes the ledger to 99.000000000001,
  booked −1.00.
- 3 Nov: usage 0.004 → 98.996000000001, still 99.00: nothing booked.
- 4 Nov: promotional grant 5.00 (promotional 5.00); usage 0.002 → 103.994000000001,
  booked −0.01 of paid credit.
- 5 Nov: usage 2.50, all promotional (promotional 2.50 left).
- 6 Nov: the grant expires: promotional −2.50 (breakage).
- 10 Nov: staff adjustment +2.00.
- 2 Dec: refund −5.00.
B is postpaid: its paid side is a receivable, not credit held. C (USD): top-up 50.00 on
3 Nov, usage 0.125 on 4 Nov: 49.875 is 49.88 in cents (floor(x + ½)), so −0.12 is booked.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from accounts.models import BillingMode
from accounts.tests.factories import OrganizationFactory
from credits.models import Balance
from credits.services import credit_adjust, ledger_post
from finance.journal import cents, journal_build
from finance.reports.base import ReportParams
from finance.reports.registry import reports
from finance.tests.world import NOW, at

D = Decimal


@pytest.fixture
def credit_world(world, time_machine):
    time_machine.move_to(at(10, 9), tick=False)
    credit_adjust(organization=world["a"], amount=D("2.00"), reason="Goodwill for an outage")
    c = OrganizationFactory(name="C", currency="USD", country="US", billing_mode=BillingMode.PREPAID)
    ledger_post(organization=c, amount=D("50.00"), kind="topup", reason="Top-up", at=at(3, 9))
    ledger_post(organization=c, amount=D("-0.125"), kind="usage", reason="Usage", at=at(4, 9))
    time_machine.move_to(NOW, tick=False)
    journal_build(now=NOW)
    return {**world, "c": c}


def credit(start: date, end: date, currency: str = "EUR", grain: str = "month", **kw):
    return reports()["credit-held"].compute(ReportParams(start=start, end=end, currency=currency, grain=grain, **kw))


def money(row: dict, *keys: str) -> list[str]:
    return [str(row[k]) for k in keys]


CASH = ("opening", "topups", "consumed", "refunds", "adjustments", "other", "closing")
PROMO = ("promo_opening", "promo_granted", "promo_consumed", "promo_expired", "promo_other", "promo_closing")


def test_by_month_the_hand_computed_figures(credit_world):
    report = credit(date(2026, 11, 1), date(2026, 12, 3))
    nov, dec = report.rows
    assert nov["period"] == "2026-11" and dec["period"] == "2026-12"
    assert money(nov, *CASH) == ["0.00", "100.00", "-1.01", "0.00", "2.00", "0.00", "100.99"]
    assert money(nov, *PROMO) == ["0.00", "5.00", "-2.50", "-2.50", "0.00", "0.00"]
    assert money(dec, *CASH) == ["100.99", "0.00", "0.00", "-5.00", "0.00", "0.00", "95.99"]
    assert money(dec, *PROMO) == ["0.00", "0.00", "0.00", "0.00", "0.00", "0.00"]
    assert dec["total_closing"] == D("95.99")
    assert report.totals is not None
    assert money(report.totals, *CASH) == ["0.00", "100.00", "-1.01", "-5.00", "2.00", "0.00", "95.99"]
    assert [s.values for s in report.chart.series] == [[D("100.99"), D("95.99")], [D("0.00"), D("0.00")]]
    assert any("not cash" in n for n in report.notes)


def test_opening_plus_movements_is_closing_in_every_period(credit_world):
    report = credit(date(2026, 11, 1), date(2026, 12, 3), grain="day")
    assert len(report.rows) == 32
    for before, row in zip(report.rows, report.rows[1:], strict=False):
        assert row["opening"] == before["closing"] and row["promo_opening"] == before["promo_closing"]
    for row in report.rows:
        assert row["opening"] + sum(row[k] for k in CASH[1:-1]) == row["closing"]
        assert row["promo_opening"] + sum(row[k] for k in PROMO[1:-1]) == row["promo_closing"]
        assert row["total_closing"] == row["closing"] + row["promo_closing"]


def test_the_closing_balance_is_the_credits_balances_rounded_once(credit_world):
    """Against credits' own cached balances (Balance = SUM of the ledger, under its lock):
    paid credit of prepaid organisations, promotional credit of every organisation."""
    report = credit(date(2026, 11, 1), date(2026, 12, 3))
    balances = Balance.objects.filter(currency="EUR").select_related("organization")
    paid = sum(cents(b.amount, "EUR") - cents(b.promo_amount, "EUR") for b in balances if b.organization.is_prepaid)
    promo = sum(cents(b.promo_amount, "EUR") for b in balances)
    assert report.rows[-1]["closing"] == paid == D("95.99")
    assert report.rows[-1]["promo_closing"] == promo
    usd = credit(date(2026, 11, 1), date(2026, 12, 3), currency="USD")
    c = Balance.objects.get(organization=credit_world["c"], currency="USD")
    assert usd.rows[-1]["closing"] == cents(c.amount, "USD") - cents(c.promo_amount, "USD") == D("49.88")


def test_days_are_half_open_and_the_opening_carries_what_came_before(credit_world):
    first = credit(date(2026, 11, 2), date(2026, 11, 5), grain="day")
    assert [r["period"] for r in first.rows] == ["2026-11-02", "2026-11-03", "2026-11-04"]
    assert money(first.rows[0], *CASH) == ["0.00", "100.00", "-1.00", "0.00", "0.00", "0.00", "99.00"]
    assert money(first.rows[1], *CASH) == ["99.00", "0.00", "0.00", "0.00", "0.00", "0.00", "99.00"]
    assert money(first.rows[2], *CASH) == ["99.00", "0.00", "-0.01", "0.00", "0.00", "0.00", "98.99"]
    assert first.rows[2]["promo_granted"] == D("5.00") and first.rows[2]["promo_closing"] == D("5.00")
    later = credit(date(2026, 11, 5), date(2026, 11, 7), grain="day")
    assert later.rows[0]["opening"] == D("98.99") and later.rows[0]["promo_opening"] == D("5.00")
    assert later.rows[0]["promo_consumed"] == D("-2.50")
    assert later.rows[1]["promo_expired"] == D("-2.50") and later.rows[1]["promo_closing"] == D("0.00")


def test_two_currencies_are_never_added(credit_world):
    eur = credit(date(2026, 11, 1), date(2026, 12, 1))
    usd = credit(date(2026, 11, 1), date(2026, 12, 1), currency="USD")
    assert eur.rows[0]["topups"] == D("100.00")
    assert money(usd.rows[0], *CASH) == ["0.00", "50.00", "-0.12", "0.00", "0.00", "0.00", "49.88"]
    assert usd.chart is not None and usd.chart.unit == "USD"


def test_one_organisation(credit_world):
    report = credit(date(2026, 11, 1), date(2026, 12, 3), organization_id=credit_world["b"].pk)
    assert all(r["total_closing"] == 0 for r in report.rows)  # postpaid: nothing held
    mine = credit(date(2026, 11, 1), date(2026, 12, 3), organization_id=credit_world["a"].pk)
    assert mine.rows[-1]["closing"] == D("95.99")


def test_a_range_past_the_built_journal_says_so(credit_world):
    report = credit(date(2026, 12, 1), date(2027, 1, 1))
    assert any("built up to 2026-12-02" in n for n in report.notes)
    assert not any("built up to" in n for n in credit(date(2026, 11, 1), date(2026, 12, 3)).notes)


def test_the_baseline_reads_the_same_sums(credit_world):
    spec = reports()["credit-held"]
    assert spec.baseline is not None
    rows = spec.baseline(ReportParams(start=date(2026, 11, 1), end=date(2026, 12, 3), currency="EUR"))
    assert sum(r[3] for r in rows) == D("95.99")  # type: ignore[attr-defined]


def test_an_empty_range_is_refused(db):
    from finance.reports.base import ReportError

    with pytest.raises(ReportError):
        credit(date(2026, 11, 2), date(2026, 11, 2))
