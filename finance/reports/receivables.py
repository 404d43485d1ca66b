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

from django.db import connection, transaction

from core.money import format_money, minor_unit_exponent
from finance.reports.base import Chart, Column, Report, ReportError, ReportParams, ReportSpec, Series
from finance.reports.registry import register

ZERO = Decimal("0")
NAME = "receivables"
BUCKETS = (("current", "Current"), ("d1_30", "1–30 days"), ("d31_60", "31–60 days"), ("d61_90", "61–90 days"),
           ("d90_plus", "Over 90 days"))
MONEY_KEYS = tuple(k for k, _ in BUCKETS) + ("total", "invoiced")

# Only the invoices that can owe something at T are aged ("candidates"): an invoice paid
# before T (status paid, `paid_at` < T) with no payment, reversal or credit note dated T
# or later owed nothing at T. (Paid means what was due is paid or credited: a payment
# settles it when it covers what remains, a credit note when it covers what is owed, a
# reversal opens it again and clears `paid_at`, and a paid invoice takes no payment; an
# invoice whose balance was carried is paid with the one it was carried to, issued before
# it was paid.) So payments, reversals and credit notes are summed for the few invoices
# open at T, not for every invoice ever issued; what was invoiced in the range is summed
# on its own.
_SQL = """
WITH scope AS (
    SELECT i.id, i.organization_id, i.status, i.paid_at, i.issued_at, i.total, i.amount_due, i.due_at,
           i.carried_to_id
    FROM invoices_invoice i
    WHERE i.currency = %(currency)s AND NOT i.is_statement AND i.number IS NOT NULL
      AND i.issued_at < %(t)s AND (i.voided_at IS NULL OR i.voided_at >= %(t)s) {org}
), cand AS MATERIALIZED (
    SELECT s.* FROM scope s
    WHERE s.status <> 'paid' OR s.paid_at IS NULL OR s.paid_at >= %(t)s
       OR s.id IN (SELECT invoice_id FROM invoices_invoicepayment WHERE received_at >= %(t)s)
       OR s.id IN (SELECT invoice_id FROM invoices_invoicepaymentreversal WHERE reversed_at >= %(t)s)
       OR s.id IN (SELECT invoice_id FROM invoices_creditnote WHERE issued_at >= %(t)s)
), wo AS (
    SELECT DISTINCT object_id::bigint AS id FROM accounts_auditlog
    WHERE action = 'invoice.marked_uncollectible' AND object_type = 'invoices.Invoice' AND created_at < %(t)s
), inv AS MATERIALIZED (
    -- Each candidate's payments, reversals, credit notes and the invoice its balance was
    -- carried to are looked up through their invoice's index (a few per candidate).
    SELECT i.id, i.organization_id,
           (%(t)s::timestamptz AT TIME ZONE 'UTC')::date
             - (COALESCE(i.due_at, i.issued_at) AT TIME ZONE 'UTC')::date AS days,
           i.amount_due
             - COALESCE((SELECT SUM(p.amount) FROM invoices_invoicepayment p WHERE p.invoice_id = i.id
                         AND p.currency = %(currency)s AND p.received_at < %(t)s), 0)
             + COALESCE((SELECT SUM(r.amount) FROM invoices_invoicepaymentreversal r WHERE r.invoice_id = i.id
                         AND r.currency = %(currency)s AND r.reversed_at < %(t)s), 0)
             - COALESCE((SELECT SUM(c.total) FROM invoices_creditnote c WHERE c.invoice_id = i.id
                         AND c.currency = %(currency)s AND c.issued_at < %(t)s), 0) AS owed,
           (wo.id IS NOT NULL) AS written_off,
           CASE WHEN i.carried_to_id IS NULL THEN false ELSE COALESCE(
               (SELECT c.issued_at < %(t)s FROM invoices_invoice c WHERE c.id = i.carried_to_id), false) END AS carried
    FROM cand i LEFT JOIN wo ON wo.id = i.id
), per_org AS (
    SELECT organization_id,
           SUM(CASE WHEN NOT written_off AND NOT carried AND owed > 0 AND days <= 0 THEN owed ELSE 0 END) AS current,
           SUM(CASE WHEN NOT written_off AND NOT carried AND owed > 0 AND days BETWEEN 1 AND 30 THEN owed ELSE 0 END) AS d1,
           SUM(CASE WHEN NOT written_off AND NOT carried AND owed > 0 AND days BETWEEN 31 AND 60 THEN owed ELSE 0 END) AS d31,
           SUM(CASE WHEN NOT written_off AND NOT carried AND owed > 0 AND days BETWEEN 61 AND 90 THEN owed ELSE 0 END) AS d61,
           SUM(CASE WHEN NOT written_off AND NOT carried AND owed > 0 AND days > 90 THEN owed ELSE 0 END) AS d90,
           0 AS invoiced,
           SUM(CASE WHEN written_off AND NOT carried AND owed > 0 THEN owed ELSE 0 END) AS wo_owed,
           COUNT(*) FILTER (WHERE written_off AND NOT carried AND owed > 0) AS wo_count
    FROM inv GROUP BY 1
    UNION ALL
    SELECT organization_id, 0, 0, 0, 0, 0, SUM(total), 0, 0 FROM scope WHERE issued_at >= %(s)s GROUP BY 1
), totals AS MATERIALIZED (
    SELECT organization_id, SUM(current) AS current, SUM(d1) AS d1, SUM(d31) AS d31, SUM(d61) AS d61,
           SUM(d90) AS d90, SUM(invoiced) AS invoiced, SUM(wo_owed) AS wo_owed, SUM(wo_count)::bigint AS wo_count
    FROM per_org GROUP BY 1
)
SELECT t.organization_id, (SELECT o.name FROM accounts_organization o WHERE o.id = t.organization_id),
       t.current, t.d1, t.d31, t.d61, t.d90, t.invoiced, t.wo_owed, t.wo_count
FROM totals t
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
    fetched = _fetch(params)
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


def _fetch(params: ReportParams) -> list[tuple]:
    sql, args = _sql(params)
    # The planner prices the per-candidate look-ups by its guess of the candidates (every
    # invoice), over JIT's thresholds: compiling took seconds for a statement of tens of
    # milliseconds. Off for this statement only.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, args)
        return cursor.fetchall()


def baseline(params: ReportParams) -> object:
    """`benchmark reports`' baseline: the same statement executed bare (no rows built)."""
    return _fetch(params)


SPEC = register(ReportSpec(
    name=NAME,
    title="Receivables",
    description="What postpaid customers owe, aged current, 1–30, 31–60, 61–90 and over 90 days past due at the "
                "range's end, per customer, with days sales outstanding.",
    compute=compute,
    grains=("month", "day"),
    baseline=baseline,
))
