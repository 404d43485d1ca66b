"""Revenue recognised, beside what was invoiced and what was collected, per period and
group, in one currency over [start, end). docs/finance.md, "Reports: revenue", has the
definitions; in short, recognised revenue is what the journal puts on its revenue
accounts (usage consumed 8290, revenue per product group, discounts 8700), so that for any
range of days the report and the journal agree to the cent:

- usage consumed, for prepaid and postpaid organisations alike (metering draws both from
  the credit ledger minute by minute), on the UTC day the ledger records it, rounded to
  cents per organisation and day by the journal's carry rule. Built days are read from
  the journal's usage entries; days after the journal's watermark are computed from the
  ledger with the same rule, starting from the carry the journal kept (`LedgerDayClose`).
- invoice lines not settled by metering (monthly fees, add-ons, overage, minimums, and
  discount lines, negative) on the invoice's issue day; a void takes them back on its day.
- credit note lines (without tax), negative, on the credit note's day.

Everything is read in one SQL statement (a handful of GROUP BYs joined at the end), so the
cost does not grow with rows in Python but with the aggregated rows the table shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction

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

GROUP_BY = ("product_group", "product", "customer", "country")
ZERO = Decimal("0")
CHART_SERIES = 10  # groups drawn apart in the chart; the rest are one "Other" series

# Group keys of figures that belong to no product (product and product_group views).
PAYMENTS = "~payments"
DISCOUNTS = "~discounts"
NO_PRODUCT = "~no-product"
UNATTRIBUTED = "~usage-unattributed"
SPECIAL_LABELS = {
    PAYMENTS: "Payments received (not by product)",
    DISCOUNTS: "Discounts and coupons (not by product)",
    NO_PRODUCT: "Charges without a product (contract minimums, …)",
    UNATTRIBUTED: "Usage with no daily rollup in its period",
}

NOTES = [
    "Recognised: revenue earned, net of discounts and credit notes, without tax: what the journal "
    "books on its revenue accounts (usage consumed, revenue per product group, discounts) for the same days.",
    "Usage is recognised when consumed, prepaid and postpaid alike: on the UTC day the credit ledger "
    "draws it, rounded to cents per customer and day as the journal does (the fraction of a cent is "
    "carried to the next day). A prepaid customer's credit is a liability until then; a postpaid "
    "customer's usage is revenue before it is invoiced.",
    "Fees (monthly fees, add-ons, overage, contract minimums) and discounts are recognised on the day "
    "their invoice is issued: invoices bill closed months in arrears, so a month's fee shows in the "
    "month it is invoiced. A voided invoice takes them back on the day it is voided.",
    "A credit note reduces revenue on the day it is issued, under the group of the invoice line it credits.",
    "By product or product group, a period's usage per customer is split over products in proportion to "
    "the daily usage rollups of that period (the remainder of the split goes to the largest product, "
    "so the split adds up to the cent).",
    "Invoiced: invoice and statement lines without tax, issued in the period, less voids and credit "
    "notes. Collected: money received in the period: top-ups and invoice payments, with tax, "
    "before refunds and lost disputes (see the Collections report). Neither is revenue.",
    "Promotional credit is not revenue when granted nor when it expires; usage paid with it is revenue "
    "when consumed. One currency only: other currencies are never added in.",
]


def _table(app_model: str) -> str:
    from django.apps import apps

    return connection.ops.quote_name(apps.get_model(app_model)._meta.db_table)


@dataclass(frozen=True)
class _Sql:
    sql: str
    args: dict[str, Any]


def _bounds(params: ReportParams) -> None:
    if params.group_by not in (None, *GROUP_BY):
        raise ReportError(f"Revenue cannot be grouped by {params.group_by!r}: use one of {', '.join(GROUP_BY)}.")
    if params.grain not in ("month", "day"):
        raise ReportError(f"Revenue is by month or by day, not by {params.grain!r}.")
    if params.start >= params.end:
        raise ReportError("The range is empty: its end must come after its start.")
    if params.start.year < 2 or params.end.year > 9998:
        raise ReportError("The range is outside the calendar the report can count in.")


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def build_sql(params: ReportParams) -> _Sql:
    """The report's one statement: rows (period, key, label, special, recognised,
    invoiced, collected), one per period and group with any figure."""
    from finance.models import JournalDay

    _bounds(params)
    group_by = params.group_by or GROUP_BY[0]
    places = minor_unit_exponent(params.currency)
    watermark = JournalDay.objects.order_by("-date").values_list("date", flat=True).first()
    # Days [start, journal_until) are read from the journal, [ledger_from, end) from the ledger.
    journal_until = min(params.end, watermark + timedelta(days=1)) if watermark and watermark >= params.start else params.start
    ledger_from = max(params.start, journal_until)
    carry_from = watermark + timedelta(days=1) if watermark else date.min
    args: dict[str, Any] = {
        "cur": params.currency, "start": params.start, "end": params.end,
        "start_ts": _midnight(params.start), "end_ts": _midnight(params.end),
        "journal_until": journal_until, "ledger_from_ts": _midnight(ledger_from),
        "watermark": watermark or date.min, "carry_from_ts": _midnight(carry_from) if watermark else None,
        "scale": Decimal(10) ** places, "places": places, "org": params.organization_id,
    }
    t = {name: _table(model) for name, model in {
        "ledger": "credits.LedgerEntry", "close": "finance.LedgerDayClose", "entry": "finance.JournalEntry",
        "jline": "finance.JournalLine", "inv": "invoices.Invoice", "line": "invoices.InvoiceLine",
        "note": "invoices.CreditNote", "nline": "invoices.CreditNoteLine", "pay": "invoices.InvoicePayment",
        "daily": "usage.UsageDaily", "org": "accounts.Organization", "product": "pricing.Product",
        "pgroup": "pricing.ProductGroup"}.items()}

    def period(day_sql: str) -> str:
        return f"date_trunc('month', ({day_sql})::timestamp)::date" if params.grain == "month" else f"({day_sql})::date"

    def utc_day(ts: str) -> str:
        return f"({ts} AT TIME ZONE 'UTC')::date"

    org_ledger = "AND organization_id = %(org)s" if params.organization_id else ""
    org_inv = "AND i.organization_id = %(org)s" if params.organization_id else ""
    org_note = "AND n.organization_id = %(org)s" if params.organization_id else ""
    org_entry = "AND e.organization_id = %(org)s" if params.organization_id else ""
    cents = "(FLOOR(({x}) * %(scale)s + 0.5) / %(scale)s)"
    since = " AND created_at >= %(carry_from_ts)s" if watermark else ""
    carry_ledger = (f"SELECT organization_id AS org, SUM(amount) AS s FROM {t['ledger']} "  # noqa: S608 - the models' tables, values as placeholders
                    f"WHERE currency = %(cur)s {org_ledger} AND created_at < %(ledger_from_ts)s{since} GROUP BY 1")
    carry_close = "SELECT NULL::bigint AS org, NULL::numeric AS s WHERE false"
    if watermark:
        carry_close = (f"SELECT DISTINCT ON (organization_id) organization_id AS org, amount AS s FROM {t['close']} "  # noqa: S608 - the models' tables, values as placeholders
                       f"WHERE currency = %(cur)s {org_ledger} AND date <= %(watermark)s ORDER BY organization_id, date DESC")

    ctes = [
        # Usage consumed on built days: the journal's usage entries (their counter line,
        # the one without an organisation, is the credit to usage revenue).
        f"""u_journal AS (
            SELECT e.organization_id AS org, {period('e.date')} AS p, -SUM(l.amount) AS amt
            FROM {t['jline']} l JOIN {t['entry']} e ON e.id = l.entry_id
            WHERE e.movement = 'usage' AND e.currency = %(cur)s AND e.date >= %(start)s AND e.date < %(journal_until)s
              AND l.organization_id IS NULL {org_entry}
            GROUP BY 1, 2)""",  # noqa: S608 - the models' tables, values as placeholders
        # Days not built yet: the ledger per organisation and day, its running sum from
        # the journal's carry, the day's usage booked last (as the journal books it).
        f"""l_days AS (
            SELECT organization_id AS org, {utc_day('created_at')} AS d, SUM(amount) AS total,
                   SUM(amount) FILTER (WHERE kind = 'usage') AS u
            FROM {t['ledger']}
            WHERE currency = %(cur)s AND created_at >= %(ledger_from_ts)s AND created_at < %(end_ts)s {org_ledger}
            GROUP BY 1, 2)""",  # noqa: S608 - the models' tables, values as placeholders
        f"""l_carry AS (
            SELECT org, SUM(s) AS s FROM (SELECT * FROM ({carry_close}) c0 UNION ALL SELECT * FROM ({carry_ledger}) c1) c
            WHERE org IN (SELECT org FROM l_days) GROUP BY 1)""",  # noqa: S608 - the models' tables, values as placeholders
        """l_run AS (
            SELECT d.org, d.d, d.u, COALESCE(c.s, 0) + SUM(d.total) OVER (PARTITION BY d.org ORDER BY d.d) AS s_end
            FROM l_days d LEFT JOIN l_carry c ON c.org = d.org)""",
        f"""u_ledger AS (
            SELECT org, d, {cents.format(x='s_end - u')} - {cents.format(x='s_end')} AS amt
            FROM l_run WHERE u IS NOT NULL)""",  # noqa: S608 - the models' tables, values as placeholders
        f"""usage AS (
            SELECT org, p, SUM(amt) AS amt FROM (
                SELECT * FROM u_journal UNION ALL SELECT org, {period('d')}, amt FROM u_ledger) u
            GROUP BY 1, 2)""",  # noqa: S608 - the models' tables, values as placeholders
        # Documents: invoice lines on issue, their mirror on void, credit note lines.
        f"""docs AS (
            SELECT i.organization_id AS org, {period(utc_day('i.issued_at'))} AS p, l.product_id, l.kind,
                   l.settled_by_metering AS metered, l.amount
            FROM {t['line']} l JOIN {t['inv']} i ON i.id = l.invoice_id
            WHERE i.currency = %(cur)s AND i.issued_at >= %(start_ts)s AND i.issued_at < %(end_ts)s {org_inv}
            UNION ALL
            SELECT i.organization_id, {period(utc_day('i.voided_at'))}, l.product_id, l.kind,
                   l.settled_by_metering, -l.amount
            FROM {t['line']} l JOIN {t['inv']} i ON i.id = l.invoice_id
            WHERE i.currency = %(cur)s AND i.issued_at IS NOT NULL
              AND i.voided_at >= %(start_ts)s AND i.voided_at < %(end_ts)s {org_inv}
            UNION ALL
            SELECT n.organization_id, {period(utc_day('n.issued_at'))}, il.product_id, COALESCE(il.kind, ''),
                   false, -cl.amount
            FROM {t['nline']} cl JOIN {t['note']} n ON n.id = cl.credit_note_id
                 LEFT JOIN {t['line']} il ON il.id = cl.invoice_line_id
            WHERE n.currency = %(cur)s AND n.issued_at >= %(start_ts)s AND n.issued_at < %(end_ts)s {org_note})""",  # noqa: S608 - the models' tables, values as placeholders
        f"""collected AS (
            SELECT organization_id AS org, {period(utc_day('created_at'))} AS p, SUM(amount) AS amt
            FROM {t['ledger']}
            WHERE kind = 'topup' AND currency = %(cur)s AND created_at >= %(start_ts)s AND created_at < %(end_ts)s
                  {org_ledger}
            GROUP BY 1, 2
            UNION ALL
            SELECT i.organization_id, {period(utc_day('pm.received_at'))}, SUM(pm.amount)
            FROM {t['pay']} pm JOIN {t['inv']} i ON i.id = pm.invoice_id
            WHERE pm.currency = %(cur)s AND pm.received_at >= %(start_ts)s AND pm.received_at < %(end_ts)s {org_inv}
            GROUP BY 1, 2)""",  # noqa: S608 - the models' tables, values as placeholders
    ]

    by_product = group_by in ("product", "product_group")
    if by_product:
        # A period's usage per organisation, split over products by the daily rollups.
        ctes += [
            f"""rolled AS (
                SELECT organization_id AS org, {period('day')} AS p, product_id, SUM(amount) AS a
                FROM {t['daily']}
                WHERE currency = %(cur)s AND day >= %(start)s AND day < %(end)s {org_ledger}
                GROUP BY 1, 2, 3)""",  # noqa: S608 - the models' tables, values as placeholders
            """split AS (
                SELECT u.org, u.p, r.product_id, u.amt, r.a,
                       SUM(r.a) OVER (PARTITION BY u.org, u.p) AS tot,
                       ROW_NUMBER() OVER (PARTITION BY u.org, u.p ORDER BY r.a DESC NULLS LAST, r.product_id) AS rn
                FROM usage u LEFT JOIN rolled r ON r.org = u.org AND r.p = u.p)""",
            """shares AS (
                SELECT org, p, product_id, amt, rn,
                       ROUND(amt * a / tot, %(places)s) AS share
                FROM split WHERE tot IS NOT NULL AND tot <> 0)""",
            """usage_by_product AS (
                SELECT org, p, product_id,
                       share + CASE WHEN rn = 1 THEN amt - SUM(share) OVER (PARTITION BY org, p) ELSE 0 END AS amt
                FROM shares
                UNION ALL
                SELECT org, p, NULL::bigint, amt FROM split WHERE (tot IS NULL OR tot = 0) AND rn = 1)""",
        ]
        usage_facts = f"SELECT org, p, product_id, CASE WHEN product_id IS NULL THEN '{UNATTRIBUTED}' END, amt, 0, 0 FROM usage_by_product"  # noqa: S608 - the models' tables, values as placeholders
    else:
        usage_facts = "SELECT org, p, NULL::bigint, NULL::text, amt, 0, 0 FROM usage"

    ctes.append(f"""facts AS (
        {usage_facts}
        UNION ALL
        SELECT org, p, product_id,
               CASE WHEN product_id IS NOT NULL THEN NULL WHEN kind = 'discount' THEN '{DISCOUNTS}' ELSE '{NO_PRODUCT}' END,
               SUM(amount) FILTER (WHERE NOT metered), SUM(amount), 0
        FROM docs GROUP BY 1, 2, 3, 4
        UNION ALL
        SELECT org, p, NULL::bigint, '{PAYMENTS}', 0, 0, SUM(amt) FROM collected GROUP BY 1, 2)""")  # noqa: S608 - the models' tables, values as placeholders

    if group_by == "customer":
        key, label = "o.id::text", "o.name"
    elif group_by == "country":
        key = label = "COALESCE(NULLIF(o.country, ''), '—')"
    elif group_by == "product":
        key = "COALESCE(f.special, f.product_id::text)"
        label = "COALESCE(pr.name || ' (' || pr.code || ')', 'product ' || f.product_id::text)"
    else:
        key = "COALESCE(f.special, pg.id::text, '~product-' || f.product_id::text)"
        label = "COALESCE(pg.name, 'product ' || f.product_id::text)"
    special = "f.special" if by_product else "NULL::text"
    sql = f"""WITH {', '.join(ctes)}
        SELECT f.p, {key} AS k, MIN({label}) AS label, MIN({special}) AS special,
               COALESCE(SUM(f.rec), 0), COALESCE(SUM(f.inv), 0), COALESCE(SUM(f.coll), 0)
        FROM (SELECT * FROM facts) AS f(org, p, product_id, special, rec, inv, coll)
             JOIN {t['org']} o ON o.id = f.org
             LEFT JOIN {t['product']} pr ON pr.id = f.product_id
             LEFT JOIN {t['pgroup']} pg ON pg.id = pr.group_id
        GROUP BY f.p, {key}
        HAVING COALESCE(SUM(f.rec), 0) <> 0 OR COALESCE(SUM(f.inv), 0) <> 0 OR COALESCE(SUM(f.coll), 0) <> 0
        ORDER BY f.p, MIN({special}) NULLS FIRST, MIN({label}), {key}"""  # noqa: S608 - the models' tables, values as placeholders
    return _Sql(sql, args)


def _fetch(params: ReportParams) -> list[tuple[Any, ...]]:
    q = build_sql(params)
    # JIT-compiling this statement's ~150 expressions cost more than it saved (one run: 12.5 s
    # against 7.4 s at 10,000 organisations × 12 months): off for this statement only.
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL jit = off")
        cur.execute(q.sql, q.args)
        return cur.fetchall()


def compute(params: ReportParams) -> Report:
    group_by = params.group_by or GROUP_BY[0]
    rows_sql = _fetch(params)
    quantum = Decimal(1).scaleb(-minor_unit_exponent(params.currency))
    labels = [period_label(p, params.grain) for p in periods(params)]
    rows: list[dict[str, Any]] = []
    per_group: dict[str, dict[str, Decimal]] = {}
    names: dict[str, str] = {}
    totals = {"recognised": ZERO, "invoiced": ZERO, "collected": ZERO}
    for p, key, label, special, rec, inv, coll in rows_sql:
        name = SPECIAL_LABELS.get(special or "", label)
        when = period_label(p, params.grain)
        rec, inv, coll = (Decimal(v).quantize(quantum) for v in (rec, inv, coll))
        rows.append({"period": p, "group": name, "recognised": rec, "invoiced": inv,
                     "collected": coll})
        totals["recognised"] += rec
        totals["invoiced"] += inv
        totals["collected"] += coll
        if rec != ZERO:
            names[key] = name
            series = per_group.setdefault(key, {})
            series[when] = series.get(when, ZERO) + rec
    return Report(
        name="revenue", title="Revenue recognised", params=params,
        columns=[Column("period", "Period", "month" if params.grain == "month" else "date"),
                 Column("group", _GROUP_LABELS[group_by], "text"),
                 Column("recognised", "Recognised"), Column("invoiced", "Invoiced"), Column("collected", "Collected")],
        rows=rows, chart=_chart(labels, per_group, names, params), totals=totals, notes=list(NOTES),
    )


_GROUP_LABELS = {"product_group": "Product group", "product": "Product", "customer": "Customer", "country": "Country"}


def _chart(labels: list[str], per_group: dict[str, dict[str, Decimal]], names: dict[str, str],
           params: ReportParams) -> Chart:
    """Recognised revenue, one stacked series per group: the largest groups by their
    total over the range apart, the rest as one "Other" series."""
    keep = params.limit or CHART_SERIES
    ranked = sorted(per_group, key=lambda k: (-abs(sum(per_group[k].values(), ZERO)), names[k]))
    series = [Series(names[k], [per_group[k].get(lb, ZERO) for lb in labels]) for k in ranked[:keep]]
    rest = ranked[keep:]
    if rest:
        series.append(Series(f"Other ({len(rest)})",
                             [sum((per_group[k].get(lb, ZERO) for k in rest), ZERO) for lb in labels]))
    return Chart(kind="stacked-bar", labels=labels, series=series, unit=params.currency)


def baseline(params: ReportParams) -> list[tuple[Any, ...]]:
    """`benchmark reports`' baseline: the same statement executed bare (no rows built)."""
    return _fetch(params)


SPEC = register(ReportSpec(
    name="revenue",
    title="Revenue recognised",
    description="Revenue earned per month or day (usage consumed, fees, net of discounts and credit notes), "
                "by product group, product, customer or country, beside what was invoiced and collected.",
    compute=compute,
    grains=("month", "day"),
    group_by=GROUP_BY,
    baseline=baseline,
))
