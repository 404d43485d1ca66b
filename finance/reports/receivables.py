"""Receivables: what postpaid customers owe on their invoices, aged by how long past due,
as of the end of the range, in one currency, per customer, with days sales outstanding.

As of the instant T = the range's end (00:00 UTC of `end`), an invoice (not a prepaid
statement) owes its amount due, less its payments received before T, plus the reversals
of those payments (refunds, lost disputes) before T, less its credit notes issued before
T, when it was issued before T, was not voided before T and its balance was not carried
to a later invoice issued before T (that one then owes it). Invoices written off
(`invoice.marked_uncollectible`) before T are left out and their amount is said in the
notes. Days past due = T's date − the due date (UTC calendar days; the issue date when
an invoice has no due date): 0 or less is current, then 1–30, 31–60, 61–90, over 90.

DSO = receivables at T ÷ invoiced in the range × days in the range, where invoiced is
the total (tax included) of the invoices issued in [start, end) and not voided by T.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection

from core.money import format_money, minor_unit_exponent
from finance.reports.base import Chart, Column, Report, ReportError, ReportParams, ReportSpec, Series
from finance.reports.registry import register

ZERO = Decimal("0")
NAME = "receivables"
BUCKETS = (("current", "Current"), ("d1_30", "1–30 days"), ("d31_60", "31–60 days"), ("d61_90", "61–90 days"),
           ("d90_plus", "Over 90 days"))
MONEY_KEYS = tuple(k for k, _ in BUCKETS) + ("total", "invoiced")

_SQL = """
WITH wo AS (
    SELECT DISTINCT object_id::bigint AS id FROM accounts_auditlog
    WHERE action = 'invoice.marked_uncollectible' AND object_type = 'invoices.Invoice' AND created_at < %(t)s
), pay AS (
    SELECT p.invoice_id, SUM(p.amount) AS s FROM invoices_invoicepayment p
    WHERE p.currency = %(currency)s AND p.received_at < %(t)s GROUP BY 1
), rev AS (
    SELECT r.invoice_id, SUM(r.amount) AS s FROM invoices_invoicepaymentreversal r
    WHERE r.currency = %(currency)s AND r.reversed_at < %(t)s GROUP BY 1
), cn AS (
    SELECT c.invoice_id, SUM(c.total) AS s FROM invoices_creditnote c
    WHERE c.currency = %(currency)s AND c.issued_at < %(t)s GROUP BY 1
), inv AS (
    SELECT i.id, i.organization_id, i.total, i.issued_at,
           (%(t)s::timestamptz AT TIME ZONE 'UTC')::date
             - (COALESCE(i.due_at, i.issued_at) AT TIME ZONE 'UTC')::date AS days,
           i.amount_due - COALESCE(pay.s, 0) + COALESCE(rev.s, 0) - COALESCE(cn.s, 0) AS owed,
           (wo.id IS NOT NULL) AS written_off,
           (c.issued_at IS NOT NULL AND c.issued_at < %(t)s) AS carried
    FROM invoices_invoice i
    LEFT JOIN invoices_invoice c ON c.id = i.carried_to_id
    LEFT JOIN pay ON pay.invoice_id = i.id
    LEFT JOIN rev ON rev.invoice_id = i.id
    LEFT JOIN cn ON cn.invoice_id = i.id
    LEFT JOIN wo ON wo.id = i.id
    WHERE i.currency = %(currency)s AND NOT i.is_statement AND i.number IS NOT NULL
      AND i.issued_at < %(t)s AND (i.voided_at IS NULL OR i.voided_at >= %(t)s) {org}
)
SELECT inv.organization_id, o.name,
       SUM(CASE WHEN NOT written_off AND NOT carried AND owed > 0 AND days <= 0 THEN owed ELSE 0 END),
       SUM(CASE WHEN NOT written_off AND NOT carried AND owed > 0 AND days BETWEEN 1 AND 30 THEN owed ELSE 0 END),
       SUM(CASE WHEN NOT written_off AND NOT carried AND owed > 0 AND days BETWEEN 31 AND 60 THEN owed ELSE 0 END),
       SUM(CASE WHEN NOT written_off AND NOT carried AND owed > 0 AND days BETWEEN 61 AND 90 THEN owed ELSE 0 END),
       SUM(CASE WHEN NOT written_off AND NOT carried AND owed > 0 AND days > 90 THEN owed ELSE 0 END),
       SUM(CASE WHEN issued_at >= %(s)s THEN total ELSE 0 END),
       SUM(CASE WHEN written_off AND NOT carried AND owed > 0 THEN owed ELSE 0 END),
       COUNT(*) FILTER (WHERE written_off AND NOT carried AND owed > 0)
FROM inv JOIN accounts_organization o ON o.id = inv.organization_id
GROUP BY 1, 2
"""


def _instant(d) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def _sql(params: ReportParams) -> tuple[str, dict]:
    args: dict = {"t": _instant(params.end), "s": _instant(params.start), "currency": params.currency}
    org = ""
    if params.organization_id is not None:
        org = "AND i.organization_id = %(org)s"
        args["org"] = params.organization_id
    return _SQL.format(org=org), args


def dso(receivable: Decimal, invoiced: Decimal, days: int) -> Decimal | None:
    """Days sales outstanding, to a tenth of a day (half up); none without sales."""
    if invoiced <= ZERO:
        return None
    return (receivable / invoiced * days).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def compute(params: ReportParams) -> Report:
    if params.end <= params.start:
        raise ReportError("The range is empty: its end must be after its start.")
    sql, args = _sql(params)
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        fetched = cursor.fetchall()
    days = (params.end - params.start).days
    # Invoices, payments and credit notes are whole minor units: quantizing fixes the print only.
    unit = Decimal(1).scaleb(-minor_unit_exponent(params.currency))
    zero = ZERO.quantize(unit)
    rows = []
    written_off, written_off_count = zero, 0
    for org_id, name, *money, wo_count in fetched:
        current, d1, d31, d61, d90, invoiced, wo_owed = (m.quantize(unit) for m in money)
        written_off += wo_owed
        written_off_count += wo_count
        total = current + d1 + d31 + d61 + d90
        if total == zero and invoiced == zero:
            continue
        rows.append({"customer": name, "organization_id": org_id, "current": current, "d1_30": d1, "d31_60": d31,
                     "d61_90": d61, "d90_plus": d90, "total": total, "invoiced": invoiced,
                     "dso": dso(total, invoiced, days)})
    rows.sort(key=lambda r: (-r["total"], r["customer"], r["organization_id"]))
    totals: dict = {k: sum((r[k] for r in rows), zero) for k in MONEY_KEYS}
    totals["dso"] = dso(totals["total"], totals["invoiced"], days)
    if params.limit is not None:
        rows = rows[: params.limit]
    as_of = params.end.isoformat()
    notes = [
        f"Aged as of {as_of} 00:00 UTC (the end of the range): days past due = that date − the due date; "
        "current is not yet past due.",
        f"DSO (days sales outstanding) = receivables at the end ÷ invoiced in the range × {days} days in the range; "
        "invoiced is the total, tax included, of the invoices issued in the range. Per customer and overall.",
        "Postpaid invoices only (prepaid statements are covered by credit: see Customer credit held). Payments, "
        "their reversals and credit notes count from the moment they were made; an unpaid balance carried to a "
        "later invoice is owed on that one.",
    ]
    if written_off_count:
        notes.append(f"Excluded: {written_off_count} written-off invoice{'s' * (written_off_count != 1)} still owing "
                     f"{format_money(written_off, params.currency)} "
                     "(bad debt, not expected any more).")
    else:
        notes.append("Written-off invoices are excluded (none here).")
    chart = Chart(kind="bar", labels=[label for _, label in BUCKETS], unit=params.currency,
                  series=[Series(f"Owed as of {as_of}", [totals[k] for k, _ in BUCKETS])])
    columns = [Column("customer", "Customer", "text"), *[Column(k, label) for k, label in BUCKETS],
               Column("total", "Total owed"), Column("invoiced", "Invoiced in the range"), Column("dso", "DSO", "days")]
    return Report(name=NAME, title=SPEC.title, params=params, columns=columns, rows=rows, chart=chart,
                  totals=totals, notes=notes)


def baseline(params: ReportParams) -> object:
    sql, args = _sql(params)
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        return cursor.fetchall()


SPEC = register(ReportSpec(
    name=NAME,
    title="Receivables",
    description="What postpaid customers owe, aged current, 1–30, 31–60, 61–90 and over 90 days past due at the "
                "range's end, per customer, with days sales outstanding.",
    compute=compute,
    grains=("month", "day"),
    baseline=baseline,
))
