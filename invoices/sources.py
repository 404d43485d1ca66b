"""What invoices read from pricing, usage and credits, in one place and set-based.

Each function takes many organisations at once and returns rows grouped per
organisation, so a run costs a handful of queries per call, never one per charge. These
are the only lines of the invoices app that know the other apps' schemas
(docs/ARCHITECTURE.md, "Contracts between apps").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Max, Min, OuterRef, Q, QuerySet, Subquery, Sum

from accounts.models import Organization
from core.money import ZERO

if TYPE_CHECKING:
    from pricing.pricing_models import PriceTerms

HOUR = timedelta(hours=1)


def _model(app_label: str, name: str) -> Any:  # a model class looked up by name, or None
    """Another app's model, or None while that app does not provide it: a source with
    nothing to read contributes no charges (and the run skips everyone quickly)."""
    from django.apps import apps

    try:
        return apps.get_model(app_label, name)
    except LookupError:
        return None


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


def usage_rows(org_ids: list[int], start: datetime, end: datetime) -> dict[int, list[UsageRow]]:
    """The rolled-up hourly history (usage.UsageHourly) of [start, end), grouped in SQL
    by organisation, resource, product, state and price."""
    from pricing.models import Price

    UsageHourly = _model("usage", "UsageHourly")  # noqa: N806
    if UsageHourly is None:
        return {}
    rows = (
        UsageHourly.objects.filter(organization_id__in=org_ids, hour__gte=start, hour__lt=end)
        .values("organization_id", "resource_id", "resource__name", "product_id", "product__code", "product__name",
                "product__billing_model", "state", "price_id")
        .annotate(minutes_sum=Sum("minutes"), amount_sum=Sum("amount"), first_hour=Min("hour"), last=Max("hour"),
                  price_unit=Subquery(Price.objects.filter(pk=OuterRef("price_id")).values("unit")[:1]))
    )
    out: dict[int, list[UsageRow]] = defaultdict(list)
    for r in rows:
        unit = r["price_unit"] or ("month" if r["product__billing_model"] == "monthly" else "hour")
        out[r["organization_id"]].append(UsageRow(
            resource_id=r["resource_id"], group=r["resource__name"] or r["product__name"],
            product_id=r["product_id"], product_code=r["product__code"], product_name=r["product__name"],
            billing_model=r["product__billing_model"], unit=unit, state=r["state"], price_id=r["price_id"] or None,
            minutes=r["minutes_sum"], amount=r["amount_sum"], start=max(r["first_hour"], start),
            end=min(r["last"] + HOUR, end),
        ))
    return {org: aggregate_usage(rs) for org, rs in out.items()}


def metered_quantities(
    org_ids: list[int], period_start: datetime, start: datetime, end: datetime
) -> dict[int, list[MeteredQuantity]]:
    """Metered quantities (usage's metered events) aggregated over the month as each
    metric says (sum, max or last): what the month had reached before the span, and what
    the span added, for many organisations in a few queries. The price is the resolver's
    (list or contract) for the metric's product at the month's start, with its monthly
    allowance, as `usage.metered.metered_charges` prices a whole period; a metric without
    a price is not billed. Reading "before" and "after" keeps the allowance monthly, so an
    interim invoice plus the rest of the month equals the month."""
    from pricing.models import Product
    from pricing.pricing_models import PriceTerms
    from pricing.resolver import NoPrice, resolve_price

    UsageEvent, Metric = _model("usage", "UsageEvent"), _model("usage", "Metric")  # noqa: N806
    if UsageEvent is None or Metric is None:
        return {}
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
    from pricing.models import Contract

    qs = Contract.objects.filter(
        Q(valid_to__isnull=True) | Q(valid_to__gt=period_start),
        organization_id__in=org_ids, valid_from__lt=period_end, committed_monthly_minimum__gt=0,
    ).values_list("organization_id", "committed_monthly_minimum", "currency", "pk")
    return {org: Minimum(amount=amount, currency=cur, contract_id=pk) for org, amount, cur, pk in qs}


def credit_balances(currencies: dict[int, str]) -> dict[int, Decimal]:
    """Credit balances (credits.Balance) of organisation id → its billing currency."""
    Balance = _model("credits", "Balance")  # noqa: N806
    if Balance is None or not currencies:
        return {}
    rows = Balance.objects.filter(organization_id__in=list(currencies)).values_list(
        "organization_id", "currency", "amount")
    return {org: amount for org, cur, amount in rows if currencies.get(org) == cur}


def price_quantity(terms: PriceTerms, quantity: Decimal) -> Decimal:
    from pricing.pricing_models import price_quantity as _price_quantity

    return _price_quantity(terms, quantity).amount


def ledger_post(*, organization: Organization, amount: Decimal, kind: str, reason: str, reference: str) -> None:
    """Post to the credit ledger (idempotent on `reference`, see credits.services)."""
    from credits.services import ledger_post as _ledger_post

    _ledger_post(organization=organization, amount=amount, kind=kind, reason=reason, reference=reference)


def organizations_with_charges(org_ids: list[int] | None, start: datetime, end: datetime) -> set[int]:
    """Set-based pre-filter: organisations with rolled-up usage, metered quantities or a
    contract minimum in [start, end). Everyone else is skipped without aggregation."""
    from pricing.models import Contract

    UsageEvent, UsageHourly = _model("usage", "UsageEvent"), _model("usage", "UsageHourly")  # noqa: N806

    def ids(qs: QuerySet[Any] | None) -> set[int]:
        if qs is None:
            return set()
        if org_ids is not None:
            qs = qs.filter(organization_id__in=org_ids)
        return set(qs.values_list("organization_id", flat=True).distinct())

    return (
        ids(UsageHourly and UsageHourly.objects.filter(hour__gte=start, hour__lt=end))
        | ids(UsageEvent and UsageEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end,
                                                       type="metered", quantity__isnull=False))
        | ids(Contract.objects.filter(Q(valid_to__isnull=True) | Q(valid_to__gt=start), valid_from__lt=end,
                                      committed_monthly_minimum__gt=0))
    )
