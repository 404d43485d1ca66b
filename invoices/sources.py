"""What invoices read from pricing, usage and credits, in one place and set-based.

Each function takes many organisations at once and returns rows grouped per
organisation, so a run costs a handful of queries per call, never one per charge. These
are the only lines of the invoices app that know the other apps' schemas
(docs/ARCHITECTURE.md, "Contracts between apps"), and they only read: what invoices
write to another app goes through that app's services (`invoices.services` posts to the
credit ledger with `credits.services.ledger_post`).

A model read here that no installed app provides (renamed, moved, app removed) raises
`SourceMissing` at use, and the system check `invoices.E001` refuses to start without
it: a source that cannot be read must stop billing, never bill zero.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Exists, Max, OuterRef, Q, QuerySet, Sum

from accounts.models import Organization
from core.money import ZERO

if TYPE_CHECKING:
    from pricing.quantity_pricing import PriceTerms

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


# Every model of another app that invoices read, by label: `invoices.checks` resolves
# each one at start-up, and `source_model` reads no other.
PRICE = "pricing.Price"
PRODUCT = "pricing.Product"
CONTRACT = "pricing.Contract"
USAGE_HOURLY = "usage.UsageHourly"
USAGE_DAILY = "usage.UsageDaily"
USAGE_EVENT = "usage.UsageEvent"
METRIC = "usage.Metric"
BALANCE = "credits.Balance"
RESOURCE = "usage.Resource"
SOURCE_MODELS = (PRICE, PRODUCT, CONTRACT, USAGE_HOURLY, USAGE_DAILY, USAGE_EVENT, METRIC, BALANCE, RESOURCE)


class SourceMissing(ImproperlyConfigured):
    """A model invoices read is not provided by any installed app."""


def source_model(label: str) -> Any:  # a model class; its manager is what the readers use
    """The model `label` (one of SOURCE_MODELS) names. Raises SourceMissing when no
    installed app provides it: reading nothing would bill nothing."""
    from django.apps import apps

    if label not in SOURCE_MODELS:
        raise SourceMissing(f"{label} is not one of invoices.sources.SOURCE_MODELS; declare it there.")
    try:
        return apps.get_model(label)
    except LookupError as exc:
        raise SourceMissing(f"Invoices read {label}, which no installed app provides ({exc}).") from exc


def resource_projects(resource_ids: Iterable[int | None]) -> dict[int, str | None]:
    """{resource id: its project's name now, None for no project}: what the invoice's
    documents group usage lines under (issue 19). One query."""
    ids = {i for i in resource_ids if i is not None}
    if not ids:
        return {}
    return dict(source_model(RESOURCE).objects.filter(pk__in=ids).values_list("pk", "project__name"))


@dataclass(frozen=True)
class UsageRow:
    """Rated usage of one resource, product, state and price over [start, end)."""

    resource_id: int | None
    group: str
    product_id: int
    product_code: str
    product_name: str
    billing_model: str
    unit: str  # what the price's rate buys: "hour" or "month"
    state: str
    price_id: int | None
    minutes: int
    amount: Decimal
    start: datetime
    end: datetime


@dataclass(frozen=True)
class MeteredQuantity:
    """A metered quantity (bandwidth GB…) in a span, what the month had used before the
    span, the monthly allowance and the terms of the overage price."""

    resource_id: int | None
    group: str
    product_id: int
    product_code: str
    product_name: str
    unit: str
    quantity_before: Decimal
    quantity: Decimal
    included: Decimal
    price: PriceTerms
    price_id: int | None


@dataclass(frozen=True)
class Minimum:
    amount: Decimal
    currency: str
    contract_id: int


def organizations(ids: list[int]) -> dict[int, Organization]:
    return Organization.objects.in_bulk(ids)


def aggregate_usage(rows: Iterable[UsageRow]) -> list[UsageRow]:
    """Hourly rows → one row per resource, product, state and price, spanning from the
    first to the last hour that had usage. Amounts stay unrounded."""
    merged: dict[tuple, UsageRow] = {}
    for r in rows:
        key = (r.resource_id, r.product_id, r.state, r.price_id)
        m = merged.get(key)
        merged[key] = r if m is None else replace(
            m, minutes=m.minutes + r.minutes, amount=m.amount + r.amount, start=min(m.start, r.start),
            end=max(m.end, r.end),
        )
    return sorted((r for r in merged.values() if r.minutes or r.amount),
                  key=lambda r: (r.group, r.start, r.product_code, r.state, r.price_id or 0))


def whole_days(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[first, last) midnights (UTC) of the whole days inside [start, end); an empty
    range at `end` when there are none. Every hour of [start, end) lies either in a
    whole day (read from the daily rollup) or outside [first, last) (read hourly)."""
    def midnight(at: datetime) -> datetime:
        at = at.astimezone(UTC)
        return datetime(at.year, at.month, at.day, tzinfo=UTC)

    first = midnight(start) if midnight(start) == start else midnight(start) + DAY
    last = midnight(end)
    return (first, last) if first < last else (end, end)


# The usage of [start, end): the daily rollup for whole days, the hourly one for the
# hours of partial days at either edge. Grouped by organisation, resource, product,
# state and price, then joined to resource, product and price. Each day's daily row is
# the sum of that day's hourly rows (usage.rollups adds both from the same aggregate in
# one statement), so this equals the hourly GROUP BY to the 12th place, at ~1/24 of the
# rows. The first and last hour of a group over whole days are one index probe each
# into the hourly unique index (resource, product, state, price, hour) on its first and
# last day; a day whose hourly rows were dropped (past USAGE_HOURLY_RETENTION_DAYS)
# counts from midnight to midnight.
_USAGE_SQL = """
WITH edge AS (
    SELECT organization_id, resource_id, product_id, state, price_id, SUM(minutes) AS minutes,
           SUM(amount) AS amount, MIN(hour) AS first_hour, MAX(hour) AS last_hour
    FROM {hourly}
    WHERE organization_id = ANY(%(orgs)s)
      AND ((hour >= %(start)s AND hour < %(whole_start)s) OR (hour >= %(whole_end)s AND hour < %(end)s))
    GROUP BY 1, 2, 3, 4, 5
), days AS (
    SELECT organization_id, resource_id, product_id, state, price_id, SUM(minutes) AS minutes,
           SUM(amount) AS amount, MIN(day) AS first_day, MAX(day) AS last_day
    FROM {daily}
    WHERE organization_id = ANY(%(orgs)s) AND day >= %(first_day)s AND day < %(end_day)s
    GROUP BY 1, 2, 3, 4, 5
), whole AS (
    SELECT d.organization_id, d.resource_id, d.product_id, d.state, d.price_id, d.minutes, d.amount,
           COALESCE((SELECT h.hour FROM {hourly} h
                     WHERE h.resource_id = d.resource_id AND h.product_id = d.product_id AND h.state = d.state
                       AND h.price_id = d.price_id AND h.hour >= d.first_day::timestamp AT TIME ZONE 'UTC'
                       AND h.hour < (d.first_day + 1)::timestamp AT TIME ZONE 'UTC'
                     ORDER BY h.hour LIMIT 1),
                    d.first_day::timestamp AT TIME ZONE 'UTC') AS first_hour,
           COALESCE((SELECT h.hour FROM {hourly} h
                     WHERE h.resource_id = d.resource_id AND h.product_id = d.product_id AND h.state = d.state
                       AND h.price_id = d.price_id AND h.hour >= d.last_day::timestamp AT TIME ZONE 'UTC'
                       AND h.hour < (d.last_day + 1)::timestamp AT TIME ZONE 'UTC'
                     ORDER BY h.hour DESC LIMIT 1),
                    (d.last_day::timestamp + interval '23 hours') AT TIME ZONE 'UTC') AS last_hour
    FROM days d
), u AS (
    SELECT organization_id, resource_id, product_id, state, price_id, SUM(minutes) AS minutes,
           SUM(amount) AS amount, MIN(first_hour) AS first_hour, MAX(last_hour) AS last_hour
    FROM (SELECT * FROM edge UNION ALL SELECT * FROM whole) parts
    GROUP BY 1, 2, 3, 4, 5
)
SELECT u.organization_id, u.resource_id, r.name, u.product_id, p.code, p.name, u.state, p.billing_model,
       u.price_id, u.minutes, u.amount, u.first_hour, u.last_hour, pr.unit
FROM u
JOIN {product} p ON p.id = u.product_id
LEFT JOIN {resource} r ON r.id = u.resource_id
LEFT JOIN {price} pr ON pr.id = u.price_id
"""


def usage_rows(org_ids: list[int], start: datetime, end: datetime) -> dict[int, list[UsageRow]]:
    """The rolled-up history of [start, end) for many organisations in one statement
    (`_USAGE_SQL`): a realistic month is ~31 daily rows per resource and price instead
    of 744 hourly ones. (Grouping the joined hourly rows, as the ORM first wrote it, was
    six times slower than grouping hourly rows alone, which was 20 times slower than
    this.)"""
    if not org_ids:
        return {}
    Price, Product, UsageHourly, UsageDaily = (  # noqa: N806
        source_model(m) for m in (PRICE, PRODUCT, USAGE_HOURLY, USAGE_DAILY))
    Resource = UsageHourly._meta.get_field("resource").related_model  # noqa: N806
    quote = connection.ops.quote_name
    sql = _USAGE_SQL.format(**{name: quote(m._meta.db_table) for name, m in (
        ("hourly", UsageHourly), ("daily", UsageDaily), ("resource", Resource), ("product", Product),
        ("price", Price))})
    whole_start, whole_end = whole_days(start, end)
    with connection.cursor() as cur:
        cur.execute(sql, {"orgs": list(org_ids), "start": start, "end": end, "whole_start": whole_start,
                          "whole_end": whole_end, "first_day": whole_start.date(), "end_day": whole_end.date()})
        rows = cur.fetchall()
    out: dict[int, list[UsageRow]] = defaultdict(list)
    for (org_id, resource_id, resource_name, product_id, product_code, product_name, state, billing_model, price_id,
         minutes, amount, first_hour, last_hour, price_unit) in rows:
        unit = price_unit or ("month" if billing_model == "monthly" else "hour")
        out[org_id].append(UsageRow(
            resource_id=resource_id, group=resource_name or product_name, product_id=product_id,
            product_code=product_code, product_name=product_name, billing_model=billing_model, unit=unit, state=state,
            price_id=price_id or None, minutes=minutes, amount=amount, start=max(first_hour, start),
            end=min(last_hour + HOUR, end),
        ))
    return {org: aggregate_usage(rs) for org, rs in out.items()}


def metered_quantities(
    org_ids: list[int], period_start: datetime, start: datetime, end: datetime
) -> dict[int, list[MeteredQuantity]]:
    """Metered quantities (usage's metered events) aggregated over the month as each
    metric says (sum, max or last): what the month had reached before the span, and what
    the span added, for many organisations in a few queries. The price is the resolver's
    (list or contract) for the metric's product at the month's start, with its monthly
    allowance, the one implementation of metered pricing; a metric without
    a price is not billed. Reading "before" and "after" keeps the allowance monthly, so an
    interim invoice plus the rest of the month equals the month."""
    from pricing.quantity_pricing import PriceTerms
    from pricing.resolver import NoPrice, resolve_price

    Product, UsageEvent, Metric = (source_model(m) for m in (PRODUCT, USAGE_EVENT, METRIC))  # noqa: N806
    metrics = {m.code: m for m in Metric.objects.all()}
    if not metrics:
        return {}

    def reached(hi: datetime) -> dict[tuple, Decimal]:
        """(organisation, metric) → the month's quantity over [period_start, hi)."""
        if hi <= period_start:
            return {}
        qs = UsageEvent.objects.filter(organization_id__in=org_ids, type="metered", metric__in=list(metrics),
                                       occurred_at__gte=period_start, occurred_at__lt=hi, quantity__isnull=False)
        out: dict[tuple, Decimal] = {}
        for agg, fn in (("sum", Sum), ("max", Max)):
            codes = [c for c, m in metrics.items() if m.aggregation == agg]
            if codes:
                rows = qs.filter(metric__in=codes).values_list("organization_id", "metric").annotate(q=fn("quantity"))
                out.update({(o, c): q for o, c, q in rows})
        last = [c for c, m in metrics.items() if m.aggregation not in ("sum", "max")]
        if last:
            rows = qs.filter(metric__in=last).order_by("organization_id", "metric", "occurred_at", "id")
            out.update({(o, c): q for o, c, q in rows.values_list("organization_id", "metric", "quantity")})
        return out

    before, total = reached(start), reached(end)
    if not total:
        return {}
    products = Product.objects.in_bulk({m.product_id for m in metrics.values()})
    orgs = organizations(list({o for o, _ in total}))
    out: dict[int, list[MeteredQuantity]] = defaultdict(list)
    for (org_id, code), reached_total in sorted(total.items()):
        metric = metrics[code]
        product = products[metric.product_id]
        try:
            price = resolve_price(organization=orgs[org_id], product=product, state="running", at=period_start)
        except NoPrice:
            continue
        terms = PriceTerms(pricing_model=price.pricing_model, amount=price.amount, tiers=price.tiers,
                           package_size=price.package_size)
        already = before.get((org_id, code), ZERO)
        out[org_id].append(MeteredQuantity(
            resource_id=None, group=product.name, product_id=product.pk, product_code=product.code,
            product_name=product.name, unit=metric.unit or product.unit_label or price.unit,
            quantity_before=already, quantity=reached_total - already,
            included=price.included_quantity, price=terms, price_id=price.price_id,
        ))
    return out


def contract_minimums(org_ids: list[int], period_start: datetime, period_end: datetime) -> dict[int, Minimum]:
    """Committed monthly minimums of contracts in force during the month."""
    qs = source_model(CONTRACT).objects.filter(
        Q(valid_to__isnull=True) | Q(valid_to__gt=period_start),
        organization_id__in=org_ids, valid_from__lt=period_end, committed_monthly_minimum__gt=0,
    ).values_list("organization_id", "committed_monthly_minimum", "currency", "pk")
    return {org: Minimum(amount=amount, currency=cur, contract_id=pk) for org, amount, cur, pk in qs}


def credit_balances(currencies: dict[int, str]) -> dict[int, Decimal]:
    """Credit balances (credits.Balance) of organisation id → its billing currency."""
    if not currencies:
        return {}
    rows = source_model(BALANCE).objects.filter(organization_id__in=list(currencies)).values_list(
        "organization_id", "currency", "amount")
    return {org: amount for org, cur, amount in rows if currencies.get(org) == cur}


def price_quantity(terms: PriceTerms, quantity: Decimal) -> Decimal:
    from pricing.quantity_pricing import price_quantity as _price_quantity

    return _price_quantity(terms, quantity).amount


def organizations_with_charges(org_ids: list[int] | None, start: datetime, end: datetime) -> set[int]:
    """Set-based pre-filter: organisations with rolled-up usage, metered quantities or a
    contract minimum in [start, end). Everyone else is skipped without aggregation."""
    Contract, UsageEvent, UsageHourly = (source_model(m) for m in (CONTRACT, USAGE_EVENT, USAGE_HOURLY))  # noqa: N806

    def ids(qs: QuerySet[Any]) -> set[int]:
        if org_ids is not None:
            qs = qs.filter(organization_id__in=org_ids)
        return set(qs.values_list("organization_id", flat=True).distinct())

    # Usage: one probe of the (organisation, hour) index per organisation, not a scan
    # of the month's hourly rows (744 per resource).
    orgs = Organization.objects.all() if org_ids is None else Organization.objects.filter(pk__in=org_ids)
    with_usage = set(orgs.filter(Exists(UsageHourly.objects.filter(organization_id=OuterRef("pk"), hour__gte=start,
                                                                   hour__lt=end))).values_list("pk", flat=True))
    return (
        with_usage
        | ids(UsageEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end, type="metered",
                                        quantity__isnull=False))
        | ids(Contract.objects.filter(Q(valid_to__isnull=True) | Q(valid_to__gt=start), valid_from__lt=end,
                                      committed_monthly_minimum__gt=0))
    )
