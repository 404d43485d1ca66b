"""Customer credit held: the money customers gave us that we still owe them in service,
a liability until consumed, by day or month, in one currency.

Read from the journal (finance/journal.py), not the raw ledger: the journal is the
ledger rounded to minor units by its telescoping rule (docs/finance.md, "From 12 places
to cents"), so every figure here is whole cents and opening + movements = closing holds
exactly, and the closing balance is, per organisation, the ledger's own sum at that
instant rounded once (`cents`). Two accounts hold it: customer credit (role
`customer_credit`, 1710: prepaid organisations' paid credit) and promotional credit
(`promo_credit`, 1719: every organisation's promotional part, not cash). A postpaid
organisation's paid side is a receivable (1400) and is in the Receivables report.

One query: the journal's daily totals on those accounts (`JournalDayTotal`, written with
the lines by `journal_build_day`, a few dozen rows a day) up to the range's end, summed by
period (or "before the range" for the opening), movement and account. For one
organisation, its lines instead (the totals are not per organisation; its lines are
found by their organisation's index).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.db import connection

from core.money import minor_unit_exponent
from finance.reports.base import (
    Chart,
    Column,
    Report,
    ReportError,
    ReportParams,
    ReportSpec,
    Series,
    period_label,
    periods,
)
from finance.reports.registry import register

ZERO = Decimal("0")
NAME = "credit-held"

# Journal movements on the paid-credit account, by column. Anything else is "other".
CASH_COLUMNS: dict[str, tuple[str, ...]] = {
    "topups": ("topup", "invoice_payment"),
    "consumed": ("usage", "invoice", "invoice_void"),
    "refunds": ("refund",),
    "adjustments": ("adjustment", "credit_note"),
}
PROMO_COLUMNS: dict[str, tuple[str, ...]] = {
    "promo_granted": ("promo_grant",),
    "promo_consumed": ("usage", "invoice", "invoice_void"),
    "promo_expired": ("promo_expiry",),
}

COLUMNS = [
    Column("period", "Period", "month"),
    Column("opening", "Opening (paid)"),
    Column("topups", "Top-ups and payments in"),
    Column("consumed", "Consumed"),
    Column("refunds", "Refunds"),
    Column("adjustments", "Adjustments and credit notes"),
    Column("other", "Other"),
    Column("closing", "Closing (paid)"),
    Column("promo_opening", "Promotional opening"),
    Column("promo_granted", "Promotional granted"),
    Column("promo_consumed", "Promotional consumed"),
    Column("promo_expired", "Promotional expired (breakage)"),
    Column("promo_other", "Promotional other"),
    Column("promo_closing", "Promotional closing"),
    Column("total_closing", "Closing, paid and promotional"),
]
MOVEMENT_KEYS = ("topups", "consumed", "refunds", "adjustments", "other")
PROMO_MOVEMENT_KEYS = ("promo_granted", "promo_consumed", "promo_expired", "promo_other")

_SQL = """
SELECT CASE WHEN e.date < %(start)s THEN NULL ELSE date_trunc(%(grain)s, e.date)::date END AS period,
       e.movement, a.role, -SUM(l.amount) AS held
FROM finance_journalline l
JOIN finance_journalentry e ON e.id = l.entry_id
JOIN finance_account a ON a.id = l.account_id
WHERE a.role IN ('customer_credit', 'promo_credit') AND e.currency = %(currency)s AND e.date < %(end)s
  {org}
GROUP BY 1, 2, 3
"""


_TOTALS_SQL = """
SELECT CASE WHEN t.date < %(start)s THEN NULL ELSE date_trunc(%(grain)s, t.date)::date END AS period,
       t.movement, a.role, -SUM(t.amount) AS held
FROM finance_journaldaytotal t
JOIN finance_account a ON a.id = t.account_id
WHERE a.role IN ('customer_credit', 'promo_credit') AND t.currency = %(currency)s AND t.date < %(end)s
GROUP BY 1, 2, 3
"""


def _sql(params: ReportParams) -> tuple[str, dict]:
    args = {"start": params.start, "end": params.end, "grain": params.grain, "currency": params.currency}
    if params.organization_id is None:
        return _TOTALS_SQL, args
    args["org"] = params.organization_id
    return _SQL.format(org="AND l.organization_id = %(org)s"), args


def _column(movement: str, role: str) -> str:
    table = CASH_COLUMNS if role == "customer_credit" else PROMO_COLUMNS
    for key, movements in table.items():
        if movement in movements:
            return key
    return "other" if role == "customer_credit" else "promo_other"


def compute(params: ReportParams) -> Report:
    from finance.journal import built_until

    if params.end <= params.start:
        raise ReportError("The range is empty: its end must be after its start.")
    sql, args = _sql(params)
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        fetched = cursor.fetchall()
    # Journal lines are whole minor units: quantizing only fixes how they print (0.00, not 0E-12).
    unit = Decimal(1).scaleb(-minor_unit_exponent(params.currency))
    zero = ZERO.quantize(unit)
    opening = {"customer_credit": zero, "promo_credit": zero}
    moved: dict[date, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: zero))
    for period, movement, role, held in fetched:
        if period is None:
            opening[role] += held.quantize(unit)
        else:
            moved[period][_column(movement, role)] += held.quantize(unit)

    rows = []
    paid, promo = opening["customer_credit"], opening["promo_credit"]
    for start in periods(params):
        row: dict = {"period": period_label(start, params.grain), "opening": paid, "promo_opening": promo}
        got = moved.get(start, {})
        for key in MOVEMENT_KEYS + PROMO_MOVEMENT_KEYS:
            row[key] = got.get(key, zero)
        paid = paid + sum((row[k] for k in MOVEMENT_KEYS), zero)
        promo = promo + sum((row[k] for k in PROMO_MOVEMENT_KEYS), zero)
        row.update(closing=paid, promo_closing=promo, total_closing=paid + promo)
        rows.append(row)

    totals: dict = {k: sum((r[k] for r in rows), zero) for k in MOVEMENT_KEYS + PROMO_MOVEMENT_KEYS}
    if rows:
        totals.update(opening=rows[0]["opening"], promo_opening=rows[0]["promo_opening"], closing=rows[-1]["closing"],
                      promo_closing=rows[-1]["promo_closing"], total_closing=rows[-1]["total_closing"])
    columns = [Column("period", "Period", "month" if params.grain == "month" else "date"), *COLUMNS[1:]]
    notes = [
        "Credit held is a liability: what customers paid for and have not consumed yet. Money in is positive, "
        "money out negative; opening + movements = closing, in every period.",
        "Promotional credit is shown apart: it is not cash. Its expiry is breakage income.",
        "Paid credit is that of prepaid organisations (a postpaid organisation's balance is a receivable, in "
        "the Receivables report); promotional credit is every organisation's.",
        "From the journal: each organisation's balance rounded once to the minor unit (docs/finance.md).",
    ]
    built = built_until()
    last_day = date.fromordinal(params.end.toordinal() - 1)
    if built is None or built < last_day:
        notes.append(f"The journal is built up to {built.isoformat() if built else 'no day yet'}; "
                     "movements of later days are not in this report yet.")
    chart = Chart(kind="line", labels=[r["period"] for r in rows], unit=params.currency, series=[
        Series("Paid credit held", [r["closing"] for r in rows]),
        Series("Promotional credit held", [r["promo_closing"] for r in rows]),
    ])
    return Report(name=NAME, title=SPEC.title, params=params, columns=columns, rows=rows, chart=chart,
                  totals=totals, notes=notes)


def baseline(params: ReportParams) -> object:
    """The same sums by bare SQL, nothing done with them."""
    sql, args = _sql(params)
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        return cursor.fetchall()


SPEC = register(ReportSpec(
    name=NAME,
    title="Customer credit held",
    description="Prepaid credit we owe customers (a liability until consumed): opening, top-ups, consumption, "
                "refunds, adjustments, promotional credit apart with its expiry (breakage), closing.",
    compute=compute,
    grains=("month", "day"),
    baseline=baseline,
))
