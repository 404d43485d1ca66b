"""Metered quantities (bandwidth GB, storage GB-hours) per period, and their price.

Each `Metric` aggregates its events over a period by `sum`, `max` or `last` (the latest
reading). The total is priced by the price book entry of the metric's product in force
at the period's start: the allowance (`included_quantity`) is free, the rest is priced
by `pricing.pricing_models.price_quantity` (per unit, tiers, package). Invoices call
`metered_charges` for the billing period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Max, Sum

from accounts.models import Organization
from core.money import ZERO
from pricing.billing_models import overage_quantity
from pricing.models import ResourceState
from pricing.pricing_models import PricedQuantity
from pricing.resolver import NoPrice, resolve_price
from usage.models import Aggregation, EventType, Metric, UsageEvent


@dataclass(frozen=True)
class MeteredCharge:
    metric: Metric
    quantity: Decimal
    included: Decimal
    billable: Decimal
    amount: Decimal
    currency: str
    price_id: int | None
    priced: PricedQuantity | None


def metered_quantities(*, organization: Organization, start: datetime, end: datetime) -> dict[str, Decimal]:
    """{metric code: aggregated quantity} over `[start, end)` for metrics with events."""
    # Only events with a quantity, as invoices.sources reads them (no constraint requires one).
    events = UsageEvent.objects.filter(organization=organization, type=EventType.METERED,
                                       occurred_at__gte=start, occurred_at__lt=end, quantity__isnull=False)
    metrics = {m.code: m for m in Metric.objects.all()}
    out: dict[str, Decimal] = {}
    sums = dict(events.values_list("metric").annotate(total=Sum("quantity")).values_list("metric", "total"))
    maxes = dict(events.values_list("metric").annotate(top=Max("quantity")).values_list("metric", "top"))
    for code, metric in metrics.items():
        if code not in sums:
            continue
        if metric.aggregation == Aggregation.SUM:
            out[code] = sums[code]
        elif metric.aggregation == Aggregation.MAX:
            out[code] = maxes[code]
        else:
            last = (events.filter(metric=code).order_by("-occurred_at", "-id")
                    .values_list("quantity", flat=True).first())
            if last is not None:
                out[code] = last
    return out


def metered_charges(*, organization: Organization, start: datetime, end: datetime) -> list[MeteredCharge]:
    charges = []
    metrics = {m.code: m for m in Metric.objects.select_related("product")}
    for code, quantity in sorted(metered_quantities(organization=organization, start=start, end=end).items()):
        metric = metrics[code]
        try:
            price = resolve_price(organization=organization, product=metric.product, state=ResourceState.RUNNING,
                                  at=start)
        except NoPrice:
            charges.append(MeteredCharge(metric, quantity, ZERO, quantity, ZERO, organization.currency, None, None))
            continue
        billable = overage_quantity(quantity, price.included_quantity)
        priced = price.price(billable)
        charges.append(MeteredCharge(metric, quantity, price.included_quantity, billable, priced.amount,
                                     price.currency, price.price_id, priced))
    return charges
