"""Usage trends: GPU-hours and resource-hours per product per day or month, and the top
customers by spend, from the daily usage rollups (`usage.UsageDaily`, kept for ever).

- group_by ``product`` (default): one row per period and product with its
  resource-hours (minutes in any priced state / 60), GPU-hours (running minutes × the
  flavour's GPUs / 60) and rated amount; the chart stacks each product's GPU-hours per
  period (resource-hours when no product in the range has GPUs).
- group_by ``customer``: the `limit` (default 10) organisations with the largest rated
  amount over the whole range, largest first (ties by organisation id), with their hours;
  the chart is their spend.

Only usage rated in the report's currency is read. The fleet's product view reads the
rollup's daily totals (`usage.UsageDayTotal`, the same sums kept with the rows); one
organisation, and the customer view, read the rollup rows. Quantities are quantized to four
places half-up (a minute is 0.0167 hours); amounts are summed at 12 places per row and
rounded once to the currency (core.money.round_money).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection
from django.db.models import F, IntegerField, Q, Sum
from django.db.models.functions import Coalesce, TruncMonth

from accounts.models import Organization
from core.money import ZERO, format_money, round_money
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
from pricing.models import Product, ResourceState
from usage.models import UsageDaily, UsageDayTotal

NAME = "usage"
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
QUANTITY = Decimal("0.0001")
MINUTES_PER_HOUR = Decimal(60)

NOTES = [
    "From the daily usage rollups: resource-hours are minutes in any priced state (running, stopped, "
    "hibernated) / 60; GPU-hours are running minutes × the flavour's GPUs / 60.",
    "Amounts are rated usage before discounts, credit notes and tax, summed per row and rounded once; "
    "an invoice rounds per line, so its usage subtotal can differ by under a cent per line.",
    "Metered quantities (bandwidth, requests), monthly fees and contract minimums have no rollups and "
    "are not here (they are on the invoices).",
    "Only usage rated in this currency; other currencies are their own report.",
]


def hours(minutes: int) -> Decimal:
    return (Decimal(minutes) / MINUTES_PER_HOUR).quantize(QUANTITY, rounding=ROUND_HALF_UP)


def _rollups(params: ReportParams, *, per_customer: bool = False):
    """The rows to sum: for the whole fleet by product, the rollup's daily totals (a few
    dozen rows a day, kept with the rollup by usage's triggers; the same sums); per
    organisation or per customer, the rollup rows themselves."""
    if params.organization_id is None and not per_customer:
        return UsageDayTotal.objects.filter(currency=params.currency, day__gte=params.start, day__lt=params.end)
    qs = UsageDaily.objects.filter(currency=params.currency, day__gte=params.start, day__lt=params.end)
    if params.organization_id is not None:
        qs = qs.filter(organization_id=params.organization_id)
    return qs


_SUMS: dict[str, Any] = {
    "minutes_sum": Coalesce(Sum("minutes"), 0),
    "gpu_minutes": Coalesce(Sum(F("minutes") * F("product__gpu_count"), filter=Q(state=ResourceState.RUNNING),
                                output_field=IntegerField()), 0),
    "amount_sum": Sum("amount"),
}


def _figures(row: dict[str, Any], currency: str) -> dict[str, Any]:
    return {"hours": hours(row["minutes_sum"]), "gpu_hours": hours(row["gpu_minutes"]),
            "amount": round_money(row["amount_sum"] or ZERO, currency)}


def _by_product(params: ReportParams) -> Report:
    period_expr = TruncMonth("day") if params.grain == "month" else F("day")
    grouped = list(_rollups(params).annotate(period=period_expr).values("period", "product_id")
                   .annotate(**_SUMS).order_by())
    products = {p.pk: p for p in Product.objects.filter(pk__in={g["product_id"] for g in grouped})}
    order = {pk: i for i, pk in enumerate(Product.objects.filter(pk__in=products).values_list("pk", flat=True))}
    grouped.sort(key=lambda g: (g["period"], order[g["product_id"]]))
    rows = [{"period": g["period"], "product": products[g["product_id"]].code,
             "product_name": products[g["product_id"]].name, **_figures(g, params.currency)} for g in grouped]
    period_kind = "month" if params.grain == "month" else "date"
    columns = [Column("period", "Month" if params.grain == "month" else "Day", period_kind),
               Column("product", "Product code", "text"), Column("product_name", "Product", "text"),
               Column("hours", "Resource-hours", "quantity"), Column("gpu_hours", "GPU-hours", "quantity"),
               Column("amount", "Rated usage", "money")]
    totals = {key: sum((r[key] for r in rows), ZERO) for key in ("hours", "gpu_hours", "amount")}
    gpu = totals["gpu_hours"] != ZERO
    measure, unit = ("gpu_hours", "GPU-hours") if gpu else ("hours", "resource-hours")
    starts = periods(params)
    index = {d: i for i, d in enumerate(starts)}
    values: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO] * len(starts))
    for r in rows:
        if r[measure] != ZERO:
            values[r["product_name"]][index[r["period"]]] += r[measure]
    chart = Chart("stacked-bar", [period_label(d, params.grain) for d in starts],
                  [Series(label, v) for label, v in values.items()], unit=unit)
    return Report(NAME, SPEC.title, params, columns, rows, chart, totals, list(NOTES))


def _by_customer(params: ReportParams) -> Report:
    limit = DEFAULT_LIMIT if params.limit is None else params.limit
    if not 1 <= limit <= MAX_LIMIT:
        raise ReportError(f"The limit is a number of customers from 1 to {MAX_LIMIT}.")
    grouped = list(_rollups(params, per_customer=True).values("organization_id").annotate(**_SUMS)
                   .order_by(F("amount_sum").desc(nulls_last=True), "organization_id"))
    everyone = round_money(sum((g["amount_sum"] or ZERO for g in grouped), ZERO), params.currency)
    top = grouped[:limit]
    names = dict(Organization.objects.filter(pk__in=[g["organization_id"] for g in top]).values_list("pk", "name"))
    rows = [{"rank": i, "customer": names.get(g["organization_id"], f"#{g['organization_id']}"),
             "organization_id": g["organization_id"], **_figures(g, params.currency)}
            for i, g in enumerate(top, start=1)]
    columns = [Column("rank", "Rank", "count"), Column("customer", "Customer", "text"),
               Column("organization_id", "Organisation id", "count"),
               Column("hours", "Resource-hours", "quantity"), Column("gpu_hours", "GPU-hours", "quantity"),
               Column("amount", "Rated usage", "money")]
    totals = {key: sum((r[key] for r in rows), ZERO) for key in ("hours", "gpu_hours", "amount")}
    chart = Chart("bar", [r["customer"] for r in rows], [Series("Rated usage", [r["amount"] for r in rows])],
                  unit=params.currency)
    notes = [f"The {len(rows)} largest of {len(grouped)} customers with usage in {params.currency}; all of them "
             f"together: {format_money(everyone, params.currency)}. Totals are of the customers shown."] + NOTES
    return Report(NAME, SPEC.title, params, columns, rows, chart, totals, notes)


def compute(params: ReportParams) -> Report:
    if (params.group_by or "product") == "customer":
        return _by_customer(params)
    if params.group_by not in (None, "product"):
        raise ReportError(f"Usage trends group by product or customer, not {params.group_by!r}.")
    return _by_product(params)


def baseline(params: ReportParams) -> object:
    """The product view's figures by bare SQL over the same rollups (for `benchmark reports`)."""
    trunc = "date_trunc('month', d.day)::date" if params.grain == "month" else "d.day"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT {trunc} AS period, d.product_id, SUM(d.minutes),
                       SUM(CASE WHEN d.state = 'running' THEN d.minutes * p.gpu_count ELSE 0 END), SUM(d.amount)
                FROM usage_usagedaytotal d JOIN pricing_product p ON p.id = d.product_id
                WHERE d.currency = %s AND d.day >= %s AND d.day < %s
                GROUP BY 1, 2 ORDER BY 1, 2""",  # noqa: S608 - `trunc` is one of two constants
            [params.currency, params.start, params.end],
        )
        return cursor.fetchall()


SPEC = register(ReportSpec(
    name=NAME,
    title="Usage trends",
    description="GPU-hours and resource-hours per product per day or month, and the top customers by rated usage.",
    compute=compute,
    grains=("day", "month"),
    group_by=("product", "customer"),
    baseline=baseline,
))
