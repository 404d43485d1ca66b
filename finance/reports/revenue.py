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


def _next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def _whole_months(first: date, last: date | None, data_end: date | None, end: date) -> tuple[date, date]:
    """The days [w0, w1) a month table answers for: the consecutive months M from the first
    one starting on or after `first` while M starts before `end` and on or before `last`
    (None: no limit), and the month's data ends by `end` (it ends at the month's end or at
    `data_end`, the day after the last with data, whichever comes first). w1 is the end of
    the last such month's data. Empty (w0 = w1 = first) when there is none."""
    m = first if first.day == 1 else _next_month(first)
    w0 = w1 = m
    while m < end and (last is None or m <= last):
        data_to = _next_month(m) if data_end is None else min(_next_month(m), max(data_end, m))
        if data_to > end:
            break
        w1 = data_to
        m = _next_month(m)
    return (w0, w1) if w1 > w0 else (first, first)


# A raw read of at most this many days goes through the organisations' indexes
# (organisation, time) one organisation at a time; a longer one is left to the planner.
SHORT_SPAN_DAYS = 62


def _snapshot(currency: str) -> tuple[date | None, date | None, date | None]:
    """(first built journal day, last built journal day, last day of the daily rollup in
    `currency`): the statement reads them again and the caller compares (`_fetch`)."""
    from django.db.models import Max, Min

    from finance.models import JournalDay
    from usage.models import UsageDayTotal

    built = JournalDay.objects.aggregate(first=Min("date"), last=Max("date"))
    rollup = UsageDayTotal.objects.filter(currency=currency).aggregate(last=Max("day"))["last"]
    return built["first"], built["last"], rollup


def build_sql(params: ReportParams) -> _Sql:
    """The report's one statement: rows (period, key, label, special, recognised,
    invoiced, collected, then the snapshot's first built day, last built day and last
    rollup day), one per period and group with any figure.

    By month, whole months are read from the stored sums per organisation and month (the
    journal's `JournalOrgMonth`, usage's `UsageOrgMonth`), the days around them from the
    rows (journal lines, ledger, daily rollups), so a year costs a few hundred thousand
    stored rows instead of millions; by day everything is read from the rows."""
    _bounds(params)
    group_by = params.group_by or GROUP_BY[0]
    places = minor_unit_exponent(params.currency)
    first_built, watermark, rollup_last = _snapshot(params.currency)
    # Days [start, journal_until) are read from the journal, [ledger_from, end) from the ledger.
    journal_until = min(params.end, watermark + timedelta(days=1)) if watermark and watermark >= params.start else params.start
    ledger_from = max(params.start, journal_until)
    carry_from = watermark + timedelta(days=1) if watermark else date.min
    # The days the month tables answer for: [jw0, jw1) of the journal's (built days only,
    # from the first built day), [rw0, rw1) of the rollups'.
    if params.grain == "month" and watermark and first_built:
        jw0, jw1 = _whole_months(max(params.start, first_built), watermark, watermark + timedelta(days=1), params.end)
    else:
        jw0 = jw1 = params.start
    if rollup_last is None or rollup_last < params.start:
        rw0, rw1 = params.start, params.end  # no rollup in the range: nothing to read
    elif params.grain == "month":
        rollup_end = rollup_last + timedelta(days=1)
        rw0, rw1 = _whole_months(params.start, None, rollup_end, params.end)
        # No rollup after the last month's data: the month sums answer to the range's end.
        rw1 = params.end if rw0 < rw1 and rw1 >= rollup_end else min(rw1, params.end)
    else:
        rw0 = rw1 = params.start
    args: dict[str, Any] = {
        "cur": params.currency, "start": params.start, "end": params.end,
        "start_ts": _midnight(params.start), "end_ts": _midnight(params.end),
        "journal_until": journal_until, "ledger_from_ts": _midnight(ledger_from),
        "watermark": watermark or date.min, "carry_from_ts": _midnight(carry_from) if watermark else None,
        "scale": Decimal(10) ** places, "places": places, "org": params.organization_id,
        "jw0": jw0, "jw1": jw1, "jw0_ts": _midnight(jw0), "jw1_ts": _midnight(jw1), "rw0": rw0, "rw1": rw1,
        "snap": (first_built, watermark, rollup_last),
    }
    t = {name: _table(model) for name, model in {
        "ledger": "credits.LedgerEntry", "close": "finance.LedgerDayClose", "entry": "finance.JournalEntry",
        "jline": "finance.JournalLine", "inv": "invoices.Invoice", "line": "invoices.InvoiceLine",
        "note": "invoices.CreditNote", "nline": "invoices.CreditNoteLine", "pay": "invoices.InvoicePayment",
        "daily": "usage.UsageDaily", "org": "accounts.Organization", "product": "pricing.Product",
        "pgroup": "pricing.ProductGroup", "jmonth": "finance.JournalOrgMonth", "umonth": "usage.UsageOrgMonth",
        "day": "finance.JournalDay", "udaytotal": "usage.UsageDayTotal"}.items()}

    def period(day_sql: str) -> str:
        return f"date_trunc('month', ({day_sql})::timestamp)::date" if params.grain == "month" else f"({day_sql})::date"

    def utc_day(ts: str) -> str:
        return f"({ts} AT TIME ZONE 'UTC')::date"

    def spans(column: str, parts: list[tuple[str, str, int]]) -> tuple[str, int]:
        """`column` within the non-empty [a, b) of `parts` (placeholders, with their length
        in days), OR-ed; `false` when all are empty. Also the days they cover."""
        kept = [(a, b) for a, b, days in parts if days > 0]
        if not kept:
            return "false", 0
        return "(" + " OR ".join(f"({column} >= %({a})s AND {column} < %({b})s)" for a, b in kept) + ")", sum(
            days for *_x, days in parts if days > 0)

    def by_org(table: str, columns: str, where: str, days: int) -> str:
        """The rows of `table` (an organisation's index leading) matching `where`: for a
        short span one organisation at a time through that index, else a plain scan."""
        org_only = "AND o.id = %(org)s" if params.organization_id else ""
        if where == "false":
            return f"SELECT {columns} FROM {table} WHERE false"  # noqa: S608 - the models' tables
        if days <= SHORT_SPAN_DAYS:
            return (f"SELECT x.* FROM {t['org']} o CROSS JOIN LATERAL ("  # noqa: S608 - the models' tables, values as placeholders
                    f"SELECT {columns} FROM {table} WHERE organization_id = o.id AND {where} OFFSET 0) x "
                    f"WHERE true {org_only}")
        org_here = "AND organization_id = %(org)s" if params.organization_id else ""
        return f"SELECT {columns} FROM {table} WHERE {where} {org_here}"  # noqa: S608 - the models' tables, values as placeholders

    def ndays(a: date, b: date) -> int:
        return max((b - a).days, 0)

    org_ledger = "AND organization_id = %(org)s" if params.organization_id else ""
    org_inv = "AND i.organization_id = %(org)s" if params.organization_id else ""
    org_note = "AND n.organization_id = %(org)s" if params.organization_id else ""
    org_entry = "AND e.organization_id = %(org)s" if params.organization_id else ""
    cents = "(FLOOR(({x}) * %(scale)s + 0.5) / %(scale)s)"
    if watermark:
        # The ledger between the journal's last close and the first unbuilt day of the range.
        carry_where, carry_days = spans("created_at", [("carry_from_ts", "ledger_from_ts",
                                                        ndays(carry_from, ledger_from))])
        carry_ledger = (f"SELECT organization_id AS org, SUM(amount) AS s FROM ("  # noqa: S608 - the models' tables, values as placeholders
                        f"{by_org(t['ledger'], 'organization_id, amount', f'currency = %(cur)s AND {carry_where}', carry_days)}"
                        ") c GROUP BY 1")
    else:
        # No journal: the carry is the whole ledger before the range.
        carry_ledger = (f"SELECT organization_id AS org, SUM(amount) AS s FROM {t['ledger']} "  # noqa: S608 - the models' tables, values as placeholders
                        f"WHERE currency = %(cur)s {org_ledger} AND created_at < %(ledger_from_ts)s GROUP BY 1")
    carry_close = "SELECT NULL::bigint AS org, NULL::numeric AS s WHERE false"
    if watermark:
        carry_close = (f"SELECT DISTINCT ON (organization_id) organization_id AS org, amount AS s FROM {t['close']} "  # noqa: S608 - the models' tables, values as placeholders
                       f"WHERE currency = %(cur)s {org_ledger} AND date <= %(watermark)s ORDER BY organization_id, date DESC")
    journal_where, _days = spans("e.date", [("start", "jw0", ndays(params.start, jw0)),
                                            ("jw1", "journal_until", ndays(jw1, journal_until))])
    unbuilt_where, unbuilt_days = spans("created_at", [("ledger_from_ts", "end_ts", ndays(ledger_from, params.end))])
    topup_where, topup_days = spans("created_at", [("start_ts", "jw0_ts", ndays(params.start, jw0)),
                                                   ("jw1_ts", "end_ts", ndays(jw1, params.end))])
    stored_usage = "false" if jw1 <= jw0 else "month >= %(jw0)s AND month < %(jw1)s"
    rollup_where, rollup_days = spans("day", [("start", "rw0", ndays(params.start, rw0)),
                                              ("rw1", "end", ndays(rw1, params.end))])
    stored_rollup = "false" if rw1 <= rw0 else "month >= %(rw0)s AND month < %(rw1)s"
    if rollup_last is None or rollup_last < params.start:
        rollup_where, stored_rollup = "false", "false"
    usage_sums_only = journal_where == "false" and unbuilt_where == "false"
    by_product = group_by in ("product", "product_group")
    # Payments name their customer through their invoice; by product they are one row a
    # period, whoever paid.
    payer, payer_join = ("i.organization_id", f"JOIN {t['inv']} i ON i.id = pm.invoice_id")
    if by_product and not params.organization_id:
        payer, payer_join = "NULL::bigint", ""

    ctes = [
        # Usage consumed on built days: the journal's usage entries (their counter line,
        # the one without an organisation, is the credit to usage revenue).
        # Usage consumed on built days: the journal's usage entries (their counter line,
        # the one without an organisation, is the credit to usage revenue), whole months
        # from their sums per organisation and month (`JournalOrgMonth`).
        f"""u_journal AS (
            SELECT e.organization_id AS org, {period('e.date')} AS p, -SUM(l.amount) AS amt
            FROM {t['jline']} l JOIN {t['entry']} e ON e.id = l.entry_id
            WHERE e.movement = 'usage' AND e.currency = %(cur)s AND {journal_where}
              AND l.organization_id IS NULL {org_entry}
            GROUP BY 1, 2
            UNION ALL
            SELECT organization_id, month, usage FROM {t['jmonth']}
            WHERE currency = %(cur)s AND {stored_usage} {org_ledger})""",  # noqa: S608 - the models' tables, values as placeholders
        # Days not built yet: the ledger per organisation and day, its running sum from
        # the journal's carry, the day's usage booked last (as the journal books it).
        f"""l_days AS (
            SELECT organization_id AS org, {utc_day('created_at')} AS d, SUM(amount) AS total,
                   SUM(amount) FILTER (WHERE kind = 'usage') AS u
            FROM ({by_org(t['ledger'], 'organization_id, created_at, amount, kind',
                          f'currency = %(cur)s AND {unbuilt_where}', unbuilt_days)}) x
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
        # (Only the month sums: one row per organisation and month already.)
        f"""usage AS (
            SELECT org, p, SUM(amt) AS amt FROM (
                SELECT * FROM u_journal UNION ALL SELECT org, {period('d')}, amt FROM u_ledger) u
            GROUP BY 1, 2)""" if not usage_sums_only else f"""usage AS (
            SELECT organization_id AS org, month AS p, usage AS amt FROM {t['jmonth']}
            WHERE currency = %(cur)s AND {stored_usage} {org_ledger})""",  # noqa: S608 - the models' tables, values as placeholders
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
        # Top-ups: whole built months from their sums (`JournalOrgMonth`), the other days
        # from the ledger.
        f"""collected AS (
            SELECT organization_id AS org, {period(utc_day('created_at'))} AS p, SUM(amount) AS amt
            FROM ({by_org(t['ledger'], 'organization_id, created_at, amount',
                          f"kind = 'topup' AND currency = %(cur)s AND {topup_where}", topup_days)}) x
            GROUP BY 1, 2
            UNION ALL
            SELECT organization_id, month, topups FROM {t['jmonth']}
            WHERE currency = %(cur)s AND {stored_usage} {org_ledger}
            UNION ALL
            SELECT {payer}, {period(utc_day('pm.received_at'))}, SUM(pm.amount)
            FROM {t['pay']} pm {payer_join}
            WHERE pm.currency = %(cur)s AND pm.received_at >= %(start_ts)s AND pm.received_at < %(end_ts)s {org_inv}
            GROUP BY 1, 2)""",  # noqa: S608 - the models' tables, values as placeholders
    ]

    by_product = group_by in ("product", "product_group")
    if by_product:
        # A period's usage per organisation, split over products by the daily rollups.
        ctes += [
            # Whole months from the rollups' sums per organisation, product and month
            # (`UsageOrgMonth`), the other days from the rollups; a product is there if a
            # rollup row is (`rows`), as when they are read one by one.
            f"""rolled AS (
                SELECT organization_id AS org, month AS p, product_id, amount AS a FROM {t['umonth']}
                WHERE currency = %(cur)s AND {stored_rollup} {org_ledger} AND rows > 0)""" if rollup_where == "false" else  # noqa: S608 - the models' tables, values as placeholders
            f"""rolled AS (
                SELECT org, p, product_id, SUM(a) AS a FROM (
                    SELECT organization_id AS org, {period('day')} AS p, product_id, SUM(amount) AS a, COUNT(*) AS n
                    FROM ({by_org(t['daily'], 'organization_id, day, product_id, amount',
                                  f'currency = %(cur)s AND {rollup_where}', rollup_days)}) x
                    GROUP BY 1, 2, 3
                    UNION ALL
                    SELECT organization_id, month, product_id, amount, rows FROM {t['umonth']}
                    WHERE currency = %(cur)s AND {stored_rollup} {org_ledger}) r
                GROUP BY 1, 2, 3 HAVING SUM(n) > 0)""",  # noqa: S608 - the models' tables, values as placeholders
            # One sort of each organisation's period, its products in order (largest first,
            # then lowest id): each product's share rounded, and the remainder to the first
            # (usage without rollups: to no product), summed per period and product in one
            # pass: each row adds its share to its product and the rest of its period's
            # usage less its share to the period's first product (summed per period, product
            # and first product: a few dozen rows, then per product).
            """usage_parts AS (
                SELECT p, own_key, first_key, SUM(own) AS own, SUM(rest) AS rest
                FROM (SELECT p, CASE WHEN share IS NOT NULL THEN product_id END AS own_key,
                             CASE WHEN share IS NOT NULL THEN first END AS first_key, COALESCE(share, 0) AS own,
                             CASE WHEN rn = 1 THEN amt ELSE 0 END - COALESCE(share, 0) AS rest
                      FROM (SELECT p, product_id, first, amt, rn, ROUND(amt * a / NULLIF(tot, 0), %(places)s) AS share
                            FROM (SELECT u.org, u.p, r.product_id, u.amt, r.a, SUM(r.a) OVER w AS tot,
                                         ROW_NUMBER() OVER w AS rn, FIRST_VALUE(r.product_id) OVER w AS first
                                  FROM usage u LEFT JOIN rolled r ON r.org = u.org AND r.p = u.p
                                  WINDOW w AS (PARTITION BY u.org, u.p ORDER BY r.a DESC NULLS LAST, r.product_id
                                               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)) s1
                            OFFSET 0) s2) s3
                GROUP BY 1, 2, 3)""",
            """usage_by_product AS (
                SELECT p, own_key AS product_id, SUM(own) AS amt FROM usage_parts GROUP BY 1, 2
                UNION ALL
                SELECT p, first_key, SUM(rest) FROM usage_parts GROUP BY 1, 2)""",
        ]
        # By product the customer is not needed past the split: every figure is summed per
        # period and product right away (a few rows instead of one per customer).
        usage_facts = ("SELECT NULL::bigint, p, product_id, CASE WHEN product_id IS NULL THEN "  # noqa: S608 - constants
                       f"'{UNATTRIBUTED}' END, amt, 0, 0 FROM usage_by_product")
    else:
        usage_facts = "SELECT org, p, NULL::bigint, NULL::text, amt, 0, 0 FROM usage"
    org_fact, by_org_fact = ("NULL::bigint", "") if by_product else ("org", "1, ")

    # What the split between month sums and rows was decided on, as this statement sees it.
    ctes.append(f"""snap AS (
        SELECT (SELECT MIN(date) FROM {t['day']}) AS first_built, (SELECT MAX(date) FROM {t['day']}) AS last_built,
               (SELECT MAX(day) FROM {t['udaytotal']} WHERE currency = %(cur)s) AS rollup_last)""")  # noqa: S608 - the models' tables, values as placeholders
    ctes.append(f"""facts AS (
        {usage_facts}
        UNION ALL
        SELECT {org_fact}, p, product_id,
               CASE WHEN product_id IS NOT NULL THEN NULL WHEN kind = 'discount' THEN '{DISCOUNTS}' ELSE '{NO_PRODUCT}' END,
               SUM(amount) FILTER (WHERE NOT metered), SUM(amount), 0
        FROM docs GROUP BY {by_org_fact}2, 3, 4
        UNION ALL
        SELECT {org_fact}, p, NULL::bigint, '{PAYMENTS}', 0, 0, SUM(amt) FROM collected GROUP BY {by_org_fact}2)""")  # noqa: S608 - the models' tables, values as placeholders

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
               COALESCE(SUM(f.rec), 0), COALESCE(SUM(f.inv), 0), COALESCE(SUM(f.coll), 0),
               MIN(snap.first_built), MIN(snap.last_built), MIN(snap.rollup_last)
        FROM (SELECT * FROM facts) AS f(org, p, product_id, special, rec, inv, coll)
             CROSS JOIN snap
             {"" if by_product else f"JOIN {t['org']} o ON o.id = f.org"}
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
        for _attempt in range(SNAPSHOT_ATTEMPTS):
            cur.execute(q.sql, q.args)
            rows = cur.fetchall()
            # Which days the month sums answer for was decided on the journal's built days
            # and the rollup's last day read before the statement; a day built (or a
            # rollup day begun) in between would be read twice or out of range: again.
            if not rows or tuple(rows[0][7:]) == q.args["snap"]:
                return [row[:7] for row in rows]
            q = build_sql(params)
    raise ReportError("The journal or the usage rollups kept changing while the report was computed: try again.")


SNAPSHOT_ATTEMPTS = 3


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
