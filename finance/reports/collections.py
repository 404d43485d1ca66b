"""Collections: what the payment providers brought in and gave back, what dunning
recovered and what was written off, by day or month, in one currency.

Every figure is read from the payments and invoices tables as they stand (set-based, one
statement for the payments side and one for write-offs), dated by when it happened, in UTC:

- *succeeded*: payments (top-ups and invoice payments) whose `succeeded_at` falls in the
  period, status `succeeded` or `refunded` (a payment refunded later did succeed);
- *failed*: payments with status `failed`, at `failed_at`;
- *refunded*: succeeded refunds, at `succeeded_at`, that are not a lost dispute (a pending,
  failed or canceled refund moved no money, as in the journal);
- *disputed*: payments whose dispute was opened in the period (`disputed_at`), at the
  payment's amount (what the customer put in question; most disputes are of the whole charge);
- *dispute lost*: the money a provider took back for a lost dispute, recorded as a succeeded
  refund keyed `dispute:<id>` (docs/payments.md);
- *dunning recovered*: succeeded payments of an invoice that has a dunning case, received
  at or after the case's first failed charge (by autopay's retry, a checkout or a bank
  transfer); they are part of *succeeded* too;
- *net* = succeeded − refunded − dispute lost;
- *written off* (no provider: only with `group_by=total`): invoices marked uncollectible
  in the period (the audit row `invoice.marked_uncollectible`, whether dunning's final
  action or staff), at what each still owed then: amount due − payments received +
  payments reversed − credit notes issued up to that moment, as the journal books it.

`group_by=provider` (the default): a row per period and provider that had anything;
`group_by=total`: a row per period, write-offs beside dunning's recoveries. The provider is
the payment's (a bank transfer staff record is a `manual` payment).
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

from django.db import connection

from core.money import ZERO, minor_unit_exponent
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
from payments.models import Provider

NAME = "collections"
GROUP_BY = ("provider", "total")

# One pass over the payments (each row gives up to four events: succeeded, failed, disputed,
# dunning recovered, each at its own time) and one over the succeeded refunds.
_PAYMENTS_SQL = """
WITH ev AS (
    SELECT e.at, p.provider, e.what, p.amount
    FROM payments_payment p
    LEFT JOIN payments_dunningcase dc ON dc.invoice_id = p.invoice_id
    CROSS JOIN LATERAL (VALUES
        (CASE WHEN p.status IN ('succeeded', 'refunded') THEN p.succeeded_at END, 'succeeded'),
        (CASE WHEN p.status = 'failed' THEN p.failed_at END, 'failed'),
        (p.disputed_at, 'disputed'),
        (CASE WHEN p.status IN ('succeeded', 'refunded') AND p.succeeded_at >= dc.first_failed_at
              THEN p.succeeded_at END, 'dunning_recovered')
    ) AS e (at, what)
    WHERE p.currency = %(currency)s AND (%(org)s::bigint IS NULL OR p.organization_id = %(org)s::bigint)
      AND ((p.succeeded_at >= %(start)s AND p.succeeded_at < %(end)s)
           OR (p.failed_at >= %(start)s AND p.failed_at < %(end)s)
           OR (p.disputed_at >= %(start)s AND p.disputed_at < %(end)s))
      AND e.at >= %(start)s AND e.at < %(end)s
    UNION ALL
    SELECT r.succeeded_at, p.provider,
           CASE WHEN r.provider_refund_id LIKE 'dispute:%%' THEN 'dispute_lost' ELSE 'refunded' END, r.amount
    FROM payments_refund r JOIN payments_payment p ON p.id = r.payment_id
    WHERE r.status = 'succeeded' AND r.succeeded_at >= %(start)s AND r.succeeded_at < %(end)s
      AND r.currency = %(currency)s AND (%(org)s::bigint IS NULL OR r.organization_id = %(org)s::bigint)
)
SELECT date_trunc(%(grain)s, at AT TIME ZONE 'UTC')::date AS period, provider,
       {figures}
FROM ev GROUP BY 1, 2
"""
WHATS = ("succeeded", "failed", "refunded", "disputed", "dispute_lost", "dunning_recovered")
_FIGURES = ",\n       ".join(
    f"COUNT(*) FILTER (WHERE what = '{w}'), COALESCE(SUM(amount) FILTER (WHERE what = '{w}'), 0)" for w in WHATS)
_PAYMENTS_SQL = _PAYMENTS_SQL.format(figures=_FIGURES)

# What each written-off invoice still owed when it was marked (finance.journal._owed_at).
_WRITE_OFFS_SQL = """
SELECT date_trunc(%(grain)s, w.at AT TIME ZONE 'UTC')::date AS period, COUNT(*), SUM(w.owed)
FROM (
    SELECT a.created_at AS at,
           i.amount_due
           - COALESCE((SELECT SUM(ip.amount) FROM invoices_invoicepayment ip
                       WHERE ip.invoice_id = i.id AND ip.received_at <= a.created_at), 0)
           + COALESCE((SELECT SUM(rv.amount) FROM invoices_invoicepaymentreversal rv
                       WHERE rv.invoice_id = i.id AND rv.reversed_at <= a.created_at), 0)
           - COALESCE((SELECT SUM(cn.total) FROM invoices_creditnote cn
                       WHERE cn.invoice_id = i.id AND cn.issued_at <= a.created_at), 0) AS owed
    FROM accounts_auditlog a
    JOIN invoices_invoice i ON i.id = CASE WHEN a.object_id ~ '^[0-9]{1,18}$' THEN a.object_id::bigint END
    WHERE a.action = 'invoice.marked_uncollectible' AND a.object_type = 'invoices.Invoice'
      AND a.created_at >= %(start)s AND a.created_at < %(end)s
      AND i.currency = %(currency)s AND (%(org)s::bigint IS NULL OR i.organization_id = %(org)s::bigint)
) w
WHERE w.owed > 0
GROUP BY 1
"""

PERIOD = {"month": Column("period", "Month", "month"), "day": Column("period", "Day", "date")}
PAYMENT_COLUMNS = [
    Column("succeeded_count", "Succeeded", "count"), Column("succeeded", "Succeeded amount"),
    Column("failed_count", "Failed", "count"), Column("failed", "Failed amount"),
    Column("refunded_count", "Refunds", "count"), Column("refunded", "Refunded"),
    Column("disputed_count", "Disputes opened", "count"), Column("disputed", "Disputed amount"),
    Column("dispute_lost_count", "Disputes lost", "count"), Column("dispute_lost", "Lost to disputes"),
    Column("dunning_recovered_count", "Dunning recoveries", "count"), Column("dunning_recovered", "Dunning recovered"),
    Column("net", "Net collected"),
]
WRITE_OFF_COLUMNS = [Column("written_off_count", "Write-offs", "count"), Column("written_off", "Written off")]


def _check(params: ReportParams) -> str:
    if params.grain not in ("day", "month"):
        raise ReportError("Choose the day or the month grain.")
    if params.start >= params.end:
        raise ReportError("The range must end after it starts.")
    group_by = params.group_by or GROUP_BY[0]
    if group_by not in GROUP_BY:
        raise ReportError(f"Collections are grouped by {' or '.join(GROUP_BY)}, not {params.group_by!r}.")
    try:
        minor_unit_exponent(params.currency)
    except ValueError as exc:
        raise ReportError(str(exc)) from exc
    return group_by


def _query_params(params: ReportParams) -> dict[str, Any]:
    return {"currency": params.currency, "org": params.organization_id, "grain": params.grain,
            "start": datetime.combine(params.start, time(0), tzinfo=UTC),
            "end": datetime.combine(params.end, time(0), tzinfo=UTC)}


def _fetch(params: ReportParams) -> tuple[list[tuple], list[tuple]]:
    q = _query_params(params)
    with connection.cursor() as cursor:
        cursor.execute(_PAYMENTS_SQL, q)
        payments = cursor.fetchall()
        cursor.execute(_WRITE_OFFS_SQL, q)
        write_offs = cursor.fetchall()
    return payments, write_offs


def baseline(params: ReportParams) -> object:
    """The same two statements, bare (for `benchmark reports`)."""
    _check(params)
    return _fetch(params)


def _figures(values: tuple) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, what in enumerate(WHATS):
        out[f"{what}_count"] = values[2 * i]
        out[what] = Decimal(values[2 * i + 1])
    out["net"] = out["succeeded"] - out["refunded"] - out["dispute_lost"]
    return out


def _add(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key, value in more.items():
        into[key] = into.get(key, 0) + value


def _zero(columns: list[Column]) -> dict[str, Any]:
    return {c.key: (0 if c.kind == "count" else ZERO) for c in columns if c.kind in ("count", "money")}


def compute(params: ReportParams) -> Report:
    group_by = _check(params)
    payments, write_offs = _fetch(params)
    days = periods(params)
    labels = [period_label(d, params.grain) for d in days]
    providers = [p for p in Provider.values if any(r[1] == p for r in payments)]
    notes = ["Dunning recovered is part of succeeded; net = succeeded − refunded − lost to disputes.",
             "Disputed is the amount of the payments whose dispute opened in the period; only a lost dispute "
             "moves money."]
    if group_by == "provider":
        columns = [PERIOD[params.grain], Column("provider", "Provider", "text"), *PAYMENT_COLUMNS]
        cells = {(r[0], r[1]): _figures(r[2:]) for r in payments}
        order = {p: i for i, p in enumerate(Provider.values)}
        rows = [{"period": d, "provider": p, **figures}
                for (d, p), figures in sorted(cells.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 99)))]
        chart = Chart(kind="stacked-bar", labels=labels, unit=params.currency, series=[
            Series(f"Succeeded, {Provider(p).label}",
                   [cells[(d, p)]["succeeded"] if (d, p) in cells else ZERO for d in days]) for p in providers])
        notes.append("Write-offs have no provider: group by total to see them beside dunning's recoveries.")
    else:
        columns = [PERIOD[params.grain], *PAYMENT_COLUMNS, *WRITE_OFF_COLUMNS]
        per_day = {d: _zero(columns) for d in days}
        for r in payments:
            _add(per_day[r[0]], _figures(r[2:]))
        for d, count, amount in write_offs:
            _add(per_day[d], {"written_off_count": count, "written_off": Decimal(amount)})
        rows = [{"period": d, **per_day[d]} for d in days]
        chart = Chart(kind="bar", labels=labels, unit=params.currency, series=[
            Series(label, [row[key] for row in rows]) for key, label in (
                ("succeeded", "Succeeded"), ("failed", "Failed"), ("refunded", "Refunded"),
                ("dispute_lost", "Lost to disputes"), ("dunning_recovered", "Dunning recovered"),
                ("written_off", "Written off"))])
    totals = _zero(columns)
    for row in rows:
        _add(totals, {k: row[k] for k in totals})
    return Report(name=NAME, title="Collections", params=params, columns=columns, rows=rows, chart=chart,
                  totals=totals, notes=notes)


SPEC = register(ReportSpec(
    name=NAME, title="Collections",
    description="Payments by provider and outcome, refunds and disputes, dunning recovered against written off.",
    compute=compute, grains=("month", "day"), group_by=GROUP_BY, baseline=baseline,
))
