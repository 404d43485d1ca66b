"""`JournalOrgMonth`, the revenue report's sums per organisation, currency and month of
the built journal days, is written by `journal_build_day` with the day's lines: after
every day built it equals the rows it sums (the usage entries' counter lines, negated,
and the ledger's top-ups of the built days), and the report by month, which reads it,
agrees with the report by day, which reads the rows."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Sum
from django.db.models.functions import TruncMonth

from credits.models import LedgerEntry
from credits.services import credit_topup, ledger_post
from finance import journal
from finance.models import JournalDay, JournalLine, JournalOrgMonth
from finance.reports import revenue
from finance.reports.base import ReportParams, period_label
from finance.tests.world import NOW, at

D = Decimal
Key = tuple[int, str, date]


def _rows() -> dict[Key, tuple[Decimal, Decimal]]:
    """What the month sums must be, from the rows of the built days."""
    sums: dict[Key, list[Decimal]] = defaultdict(lambda: [D(0), D(0)])
    usage = (JournalLine.objects.filter(entry__movement="usage", organization__isnull=True)
             .annotate(month=TruncMonth("entry__date")).values("entry__organization_id", "entry__currency", "month")
             .annotate(s=Sum("amount")).order_by())
    for r in usage:
        sums[(r["entry__organization_id"], r["entry__currency"], r["month"])][0] -= r["s"]
    built = sorted(JournalDay.objects.values_list("date", flat=True))
    if built:
        start, end = journal.day_bounds(built[0])[0], journal.day_bounds(built[-1])[1]
        for e in LedgerEntry.objects.filter(kind="topup", created_at__gte=start, created_at__lt=end):
            day = journal.day_bounds(e.created_at.date())[0].date()
            sums[(e.organization_id, e.currency, day.replace(day=1))][1] += e.amount
    return {k: (u, t) for k, (u, t) in sums.items() if (u, t) != (D(0), D(0))}


def _stored() -> dict[Key, tuple[Decimal, Decimal]]:
    return {(m.organization_id, m.currency, m.month): (m.usage, m.topups)
            for m in JournalOrgMonth.objects.all() if (m.usage, m.topups) != (D(0), D(0))}


def test_the_month_sums_equal_the_rows_after_every_day_built(world, time_machine):
    # A second month: a top-up on 1 December (the world's other money moves in November).
    time_machine.move_to(at(1, 12, month=12), tick=False)
    credit_topup(organization=world["a"], amount=D("30.00"), currency="EUR", reference="bank:dec")
    time_machine.move_to(NOW, tick=False)
    day, last = journal.first_day(), journal.last_closed_day(NOW)
    assert day is not None
    while day <= last:
        assert journal.journal_build_day(day)
        assert _stored() == _rows(), day
        day += timedelta(days=1)
    a = world["a"].pk
    stored = _stored()
    # A's November: 1.00 (10-12h, 3 × 0.333…), 0.01 (3 Nov, with 4 Nov's 0.002 carried), 2.50; top-up 100.00.
    assert stored[(a, "EUR", date(2026, 11, 1))] == (D("3.51"), D("100.00"))
    assert stored[(a, "EUR", date(2026, 12, 1))] == (D("0"), D("30.00"))
    assert stored[(world["b"].pk, "EUR", date(2026, 11, 1))] == (D("12.35"), D("0"))
    assert not journal.journal_build_day(last)  # a rerun adds nothing
    assert _stored() == stored


def _by_period(grain: str, start: date, end: date, group_by: str) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    report = revenue.compute(ReportParams(start=start, end=end, currency="EUR", grain=grain,  # type: ignore[arg-type]
                                          group_by=group_by))
    out: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [D(0), D(0)])
    for r in report.rows:
        out[(period_label(r["period"], "day")[:7], r["group"])][0] += r["recognised"]
        out[(period_label(r["period"], "day")[:7], r["group"])][1] += r["collected"]
    return {k: (rec, coll) for k, (rec, coll) in out.items() if (rec, coll) != (D(0), D(0))}


def test_the_report_by_month_reads_the_sums_and_agrees_with_the_rows_by_day(world, time_machine):
    # December (built from its first day, so by month it is read from the sums): usage and a top-up.
    time_machine.move_to(at(1, 12, month=12), tick=False)
    credit_topup(organization=world["a"], amount=D("30.00"), currency="EUR", reference="bank:dec")
    ledger_post(organization=world["a"], amount=D("-1.234"), kind="usage", reason="Usage")
    time_machine.move_to(NOW, tick=False)
    journal.journal_build(now=NOW)
    nov, jan = date(2026, 11, 1), date(2027, 1, 1)
    for group_by in ("customer", "country", "product_group"):
        by_day = _by_period("day", nov, jan, group_by)
        assert _by_period("month", nov, jan, group_by) == by_day
    assert _by_period("month", nov, jan, "customer")[("2026-12", "A")] == (D("1.23"), D("30.00"))
    # By month December is read from the stored sums: changed, the report changes.
    JournalOrgMonth.objects.filter(month=date(2026, 12, 1)).update(usage=0, topups=0)
    assert ("2026-12", "A") not in _by_period("month", nov, jan, "customer")
    assert ("2026-12", "A") in _by_period("day", nov, jan, "customer")


def test_a_day_built_between_the_plan_and_the_statement_is_read_once(world, monkeypatch):
    """The split between month sums and rows is decided on the built days read before the
    statement; the statement reads them again, and a changed answer computes it again."""
    journal.journal_build(until=date(2026, 11, 30), now=NOW)
    params = ReportParams(start=date(2026, 11, 1), end=date(2026, 12, 3), currency="EUR", group_by="customer")
    expected = revenue.compute(params).rows
    real, calls = revenue._snapshot, []

    def stale(currency):
        first, last, rollup = real(currency)
        calls.append(last)
        return (first, last - timedelta(days=1), rollup) if len(calls) == 1 else (first, last, rollup)

    monkeypatch.setattr(revenue, "_snapshot", stale)
    assert revenue.compute(params).rows == expected
    assert len(calls) == 2
