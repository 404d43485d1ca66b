"""Recurring revenue: MRR and ARR from monthly fees, their movements month by month, and
the usage run-rate beside them. One currency, months only.

**What a monthly plan is here.** The price book has no subscriptions: a product billed
`monthly` (IPv4 addresses, monthly add-ons, …) costs its fee per calendar month, prorated
by the minute, and the month's invoice carries one fee line per resource, product, state
and price (`invoices.handlers.recurring`: kind `recurring`, or `addon` for a monthly
add-on; unit `month`; `unit_price` the monthly rate, `quantity` the fraction of the month
held; `service_end` the end of the last hour held). No other interval exists (no yearly
or weekly prices), so there is nothing to normalise.

**MRR of an organisation for month M** = the monthly rates (`unit_price`) of the fee
lines of its issued invoice for M (open, paid or uncollectible; never a draft or a void
one) that were still held when the month ended (`service_end` = the period's end, or no
service dates: a line written by hand), one line per resource and product (the last one:
a resource whose state changed in the month's last hour keeps the later state's rate),
summed and rounded once half-up to the currency's minor unit. It is the run rate at the
month's end, not the prorated amount billed: a resource started on the 20th adds its full
fee. Credit notes do not change MRR (a one-off correction is not a recurring change).
ARR = 12 × MRR.

**Movements.** For each organisation, prev = its MRR of the month before, cur = this
month's, and its change cur − prev is exactly one of: *new* (prev = 0, first month it ever
had MRR), *reactivation* (prev = 0, it had MRR in some earlier month), *expansion*
(cur > prev > 0), *contraction* (prev > cur > 0), *churn* (cur = 0 < prev: −prev). So
opening (Σ prev) + new + reactivation + expansion + contraction + churn = closing (Σ cur)
exactly, per month, in whole minor units.

**Usage run-rate** at the end of month M = the usage consumed over the 30 UTC days ending
with M (the daily rollup `usage_usagedaily`, every product except monthly fees, which MRR
counts; metered overage is priced only when invoiced and is not in it) × 365 / 30 / 12,
rounded once half-up: the average month that 30 days' pace makes.

A month that has not ended yet has no invoice: it is left out (a note says so).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from core.money import ZERO, minor_unit_exponent, round_money
from finance.reports.base import Chart, Column, Report, ReportError, ReportParams, ReportSpec, Series, periods
from finance.reports.registry import register

NAME = "recurring"
USAGE_WINDOW_DAYS = 30

# Per organisation and month: the monthly rates of the fee lines held at the month's end.
# All history before the range's end is read so "new" can be told from "reactivation".
_MRR_SQL = """
WITH fee_line AS (
    SELECT DISTINCT ON (i.id, COALESCE(l.resource_id, -l.id), l.product_id)
           i.organization_id AS org, date_trunc('month', i.period_start AT TIME ZONE 'UTC')::date AS month,
           l.unit_price
    FROM invoices_invoice i JOIN invoices_invoiceline l ON l.invoice_id = i.id
    WHERE i.currency = %(currency)s AND i.status IN ('open', 'paid', 'uncollectible')
      AND i.period_start < %(end_ts)s
      AND (%(org)s::bigint IS NULL OR i.organization_id = %(org)s::bigint)
      AND l.unit = 'month' AND l.kind IN ('recurring', 'addon')
      AND COALESCE(l.service_end, i.period_end) >= i.period_end
    ORDER BY i.id, COALESCE(l.resource_id, -l.id), l.product_id, l.service_start DESC NULLS LAST, l.position DESC
), mrr AS (
    SELECT org, month, ROUND(SUM(unit_price), %(places)s) AS mrr
    FROM fee_line GROUP BY org, month
    HAVING ROUND(SUM(unit_price), %(places)s) > 0
), first_month AS (
    SELECT org, MIN(month) AS first FROM mrr GROUP BY org
), moves AS (
    SELECT org, month, c.mrr AS cur, pv.mrr AS prev
    FROM (SELECT org, month, mrr FROM mrr WHERE month >= %(first)s AND month <= %(last)s) c
    FULL JOIN (SELECT org, (month + interval '1 month')::date AS month, mrr FROM mrr
               WHERE month >= %(opening)s AND month < %(last)s) pv USING (org, month)
)
SELECT m.month,
       COALESCE(SUM(m.prev), 0) AS opening,
       COALESCE(SUM(m.cur) FILTER (WHERE m.prev IS NULL AND m.month = f.first), 0) AS new,
       COALESCE(SUM(m.cur) FILTER (WHERE m.prev IS NULL AND m.month > f.first), 0) AS reactivation,
       COALESCE(SUM(m.cur - m.prev) FILTER (WHERE m.cur > m.prev), 0) AS expansion,
       COALESCE(SUM(m.cur - m.prev) FILTER (WHERE m.cur < m.prev), 0) AS contraction,
       COALESCE(-SUM(m.prev) FILTER (WHERE m.cur IS NULL), 0) AS churn,
       COALESCE(SUM(m.cur), 0) AS closing,
       COUNT(m.cur) AS customers,
       COUNT(*) FILTER (WHERE m.prev IS NULL AND m.month = f.first) AS new_customers,
       COUNT(*) FILTER (WHERE m.prev IS NULL AND m.month > f.first) AS reactivated_customers,
       COUNT(*) FILTER (WHERE m.cur IS NULL) AS churned_customers
FROM moves m JOIN first_month f ON f.org = m.org
GROUP BY m.month
"""

# Usage consumed per month-end window of 30 days, monthly fees left out (MRR has them):
# rows at a monthly price, and rows without a price row (price_id 0, imported history) of a
# monthly-billed product. One pass over the days' rollup rows, summed per day, then per
# window. The fee ids are read first (`_FEES_SQL`, a few rows) and given as constants: as
# sub-selects the planner cannot estimate them and sorts every row of the year on disk.
_FEES_SQL = """
SELECT ARRAY(SELECT id FROM pricing_price WHERE unit = 'month'),
       ARRAY(SELECT id FROM pricing_product WHERE billing_model = 'monthly')
"""
_USAGE_SQL_TEMPLATE = """
WITH daily AS (
    SELECT d.day, SUM(d.amount) AS amount
    FROM {rollup} d
    WHERE d.currency = %(currency)s AND d.day >= %(window_start)s AND d.day < %(window_end)s
      {org}
      AND NOT d.price_id = ANY (%(fee_prices)s::bigint[])
      AND NOT (d.price_id = 0 AND d.product_id = ANY (%(fee_products)s::bigint[]))
    GROUP BY d.day
), months AS (
    SELECT m::date AS month, (m + interval '1 month')::date AS month_end
    FROM generate_series(%(first)s::date, %(last)s::date, interval '1 month') AS m
)
SELECT m.month, COALESCE(SUM(d.amount), 0)
FROM months m
LEFT JOIN daily d ON d.day >= m.month_end - %(days)s AND d.day < m.month_end
GROUP BY m.month
"""
# The whole fleet: the rollup's daily totals (usage.UsageDayTotal, kept with the rows by
# usage's triggers: a few dozen rows a day, the same sums). One organisation: its rows.
_USAGE_SQL = _USAGE_SQL_TEMPLATE.format(rollup="usage_usagedaytotal", org="")
_ORG_USAGE_SQL = _USAGE_SQL_TEMPLATE.format(rollup="usage_usagedaily", org="AND d.organization_id = %(org)s::bigint")


COLUMNS = [
    Column("month", "Month", "month"),
    Column("opening_mrr", "Opening MRR"),
    Column("new", "New"),
    Column("expansion", "Expansion"),
    Column("contraction", "Contraction"),
    Column("churn", "Churn"),
    Column("reactivation", "Reactivation"),
    Column("mrr", "Closing MRR"),
    Column("arr", "ARR"),
    Column("customers", "Paying customers", "count"),
    Column("new_customers", "New customers", "count"),
    Column("churned_customers", "Churned customers", "count"),
    Column("reactivated_customers", "Reactivated customers", "count"),
    Column("usage_30d", "Usage, last 30 days"),
    Column("usage_run_rate", "Usage run-rate per month"),
]
MOVEMENTS = ("new", "expansion", "contraction", "churn", "reactivation")
SUMMED = (*MOVEMENTS, "new_customers", "churned_customers", "reactivated_customers")


def run_rate(used: Decimal) -> Decimal:
    """The month a 30-day window's pace makes: × 365 / 30 / 12, multiplied before it is
    divided so that a whole-cent window stays exact (9.00 → 9.125, not 9.12499…)."""
    return used * 365 / (USAGE_WINDOW_DAYS * 12)


def _next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def _previous_month(d: date) -> date:
    return date(d.year - (d.month == 1), (d.month - 2) % 12 + 1, 1)


def closed_months(params: ReportParams, *, today: date | None = None) -> list[date]:
    """The months of the range that have ended (their invoices can exist); ReportError
    for parameters this report cannot answer."""
    if params.grain != "month":
        raise ReportError("Recurring revenue is a month-end figure: choose the month grain.")
    if params.start >= params.end:
        raise ReportError("The range must end after it starts.")
    if params.group_by not in (None, ""):
        raise ReportError("Recurring revenue cannot be grouped.")
    try:
        minor_unit_exponent(params.currency)
    except ValueError as exc:
        raise ReportError(str(exc)) from exc
    today = today or timezone.now().date()
    return [m for m in periods(params) if _next_month(m) <= today]


def _query_params(params: ReportParams, months: list[date]) -> dict[str, Any]:
    first, last = months[0], months[-1]
    end = _next_month(last)
    return {
        "currency": params.currency, "org": params.organization_id, "places": minor_unit_exponent(params.currency),
        "first": first, "last": last, "opening": _previous_month(first),
        "end_ts": datetime(end.year, end.month, 1, tzinfo=UTC),
        "window_start": date.fromordinal(_next_month(first).toordinal() - USAGE_WINDOW_DAYS), "window_end": end,
        "days": USAGE_WINDOW_DAYS,
    }


def _fetch(params: ReportParams, months: list[date]) -> tuple[list[tuple], list[tuple]]:
    q = _query_params(params, months)
    with connection.cursor() as cursor:
        cursor.execute(_MRR_SQL, q)
        mrr = cursor.fetchall()
        cursor.execute(_FEES_SQL)
        q["fee_prices"], q["fee_products"] = cursor.fetchone()
        cursor.execute(_USAGE_SQL if params.organization_id is None else _ORG_USAGE_SQL, q)
        usage = cursor.fetchall()
    return mrr, usage


def baseline(params: ReportParams) -> object:
    """The same two statements, bare (for `benchmark reports`)."""
    months = closed_months(params)
    return _fetch(params, months) if months else ([], [])


def compute(params: ReportParams) -> Report:
    months = closed_months(params)
    notes = [
        "MRR is the monthly rate of every monthly fee still held at the month's end, from the month's "
        "issued invoice (not the prorated amount billed); ARR = 12 × MRR.",
        "Opening MRR + new + expansion + contraction + churn + reactivation = closing MRR.",
        f"Usage run-rate = usage consumed in the {USAGE_WINDOW_DAYS} days ending with the month × 365 / "
        f"{USAGE_WINDOW_DAYS} / 12 (monthly fees and metered overage left out).",
    ]
    skipped = len(periods(params)) - len(months) if params.grain == "month" else 0
    if skipped:
        notes.append(f"{skipped} month(s) of the range have not ended yet: they have no invoice and are not shown.")
    rows: list[dict[str, Any]] = []
    if months:
        mrr_rows, usage_rows = _fetch(params, months)
        by_month = {r[0]: r for r in mrr_rows}
        usage = {m: amount for m, amount in usage_rows}
        for m in months:
            r = by_month.get(m)
            opening, new, reactivation, expansion, contraction, churn, closing = (
                (Decimal(x) for x in r[1:8]) if r else (ZERO,) * 7)
            used = Decimal(usage.get(m, ZERO))
            rows.append({
                "month": m, "opening_mrr": opening, "new": new, "expansion": expansion,
                "contraction": contraction, "churn": churn, "reactivation": reactivation, "mrr": closing,
                "arr": closing * 12, "customers": r[8] if r else 0, "new_customers": r[9] if r else 0,
                "churned_customers": r[11] if r else 0, "reactivated_customers": r[10] if r else 0,
                "usage_30d": round_money(used, params.currency),
                "usage_run_rate": round_money(run_rate(used), params.currency),
            })
    totals = {k: sum((row[k] for row in rows), ZERO if k in MOVEMENTS else 0) for k in SUMMED}
    labels = [m.strftime("%Y-%m") for m in months]
    chart = Chart(kind="stacked-bar", labels=labels, unit=params.currency, series=[
        *(Series(col.label, [row[col.key] for row in rows]) for col in COLUMNS if col.key in MOVEMENTS),
        Series("Closing MRR", [row["mrr"] for row in rows], kind="line"),
    ])
    return Report(name=NAME, title="Recurring revenue", params=params, columns=list(COLUMNS), rows=rows,
                  chart=chart, totals=totals, notes=notes)


SPEC = register(ReportSpec(
    name=NAME, title="Recurring revenue",
    description="MRR and ARR from monthly fees, new / expansion / contraction / churn / reactivation by month, "
                "and the usage run-rate of the last 30 days.",
    compute=compute, grains=("month",), baseline=baseline,
))
