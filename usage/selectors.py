"""Reads of usage for the API, the portal and other apps.

Hour and day series come from the rollups (rolled up within a minute of metering);
minute series from the per-minute detail (kept `USAGE_DETAIL_RETENTION_DAYS`). Month to
date adds the rated rows of runs not yet rolled up, so it is live to the last metered
minute.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Q, Sum

from accounts.models import Organization
from core.money import ZERO
from pricing.models import BillingModel, PriceUnit, Product
from pricing.proration import minutes_in_month, month_start
from pricing.resolver import resolve_many
from usage.models import (
    AddonAttachment,
    MeteringRun,
    RatedUsage,
    Resource,
    ResourceState,
    UsageDaily,
    UsageHourly,
    from_minute,
    to_minute,
)

GRANULARITIES = ("minute", "hour", "day")
MAX_POINTS = {"minute": 60 * 24 * 2, "hour": 24 * 93, "day": 3660}
LIVE_STATES = (ResourceState.RUNNING, ResourceState.STOPPED, ResourceState.HIBERNATED, ResourceState.PROVISIONING,
               ResourceState.ERROR)


def usage_series(*, organization: Organization, start: datetime, end: datetime, granularity: str,
                 resource_id: int | None = None, product_id: int | None = None) -> list[dict]:
    """Net minutes and amount per period, resource, product and state over `[start, end)`."""
    filters = Q(organization=organization)
    if resource_id is not None:
        filters &= Q(resource_id=resource_id)
    if product_id is not None:
        filters &= Q(product_id=product_id)
    if granularity == "minute":
        minutes = (RatedUsage.objects.filter(filters, start_minute__gte=to_minute(start), start_minute__lt=to_minute(end))
                   .values("start_minute", "resource_id", "product_id", "state", "currency")
                   .annotate(minutes=Sum("minutes"), amount=Sum("amount")).order_by("start_minute", "resource_id"))
        return [_point(from_minute(r["start_minute"]), r) for r in minutes if r["minutes"] or r["amount"]]
    if granularity == "hour":
        hours = (UsageHourly.objects.filter(filters, hour__gte=start, hour__lt=end)
                 .values("hour", "resource_id", "product_id", "state", "currency")
                 .annotate(minutes=Sum("minutes"), amount=Sum("amount")).order_by("hour", "resource_id"))
        return [_point(r["hour"], r) for r in hours if r["minutes"] or r["amount"]]
    days = (UsageDaily.objects.filter(filters, day__gte=start.date(), day__lt=_day_after(end))
            .values("day", "resource_id", "product_id", "state", "currency")
            .annotate(minutes=Sum("minutes"), amount=Sum("amount")).order_by("day", "resource_id"))
    return [_point(datetime(r["day"].year, r["day"].month, r["day"].day, tzinfo=UTC), r) for r in days
            if r["minutes"] or r["amount"]]


def _day_after(end: datetime) -> date:
    d = end.astimezone(UTC)
    return d.date() if d == datetime(d.year, d.month, d.day, tzinfo=UTC) else d.date() + timedelta(days=1)


def _point(period: datetime, row: Mapping[str, Any]) -> dict:
    return {"period": period, "resource": row["resource_id"], "product": row["product_id"], "state": row["state"],
            "minutes": row["minutes"], "amount": row["amount"], "currency": row["currency"]}


@dataclass
class MonthToDate:
    month: date
    amount: Decimal
    currency: str
    by_product: dict[int, Decimal]
    metered_until: datetime | None
    open_hour: Decimal = ZERO  # in `amount`, not in `by_product`: the open hour's accruals


def month_to_date(*, organization: Organization, now: datetime) -> MonthToDate:
    start = month_start(now)
    by_product: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for product_id, amount in (UsageDaily.objects.filter(organization=organization, day__gte=start.date(),
                                                          day__lte=now.date())
                               .values_list("product_id").annotate(Sum("amount"))):
        by_product[product_id] += amount
    pending = MeteringRun.objects.filter(rolled_up_at__isnull=True).values("id")
    for product_id, amount in (RatedUsage.objects.filter(organization=organization, run_id__in=pending,
                                                          start_minute__gte=to_minute(start))
                               .values_list("product_id").annotate(Sum("amount"))):
        by_product[product_id] += amount
    from usage.metering import chunk_count
    from usage.models import MeteringChunk, UsageAccrual

    chunk = MeteringChunk.objects.filter(number=organization.pk % chunk_count()).first()
    # The open hour is charged per organisation (no product yet) until its spans are stored.
    open_hour = ZERO
    if chunk is not None and chunk.rated_minute is not None:
        open_hour = UsageAccrual.objects.filter(
            organization=organization, currency=organization.currency,
            start_minute__gte=max(chunk.rated_minute, to_minute(start)),
        ).aggregate(s=Sum("amount"))["s"] or ZERO
    return MonthToDate(
        month=start.date(), amount=sum(by_product.values(), ZERO) + open_hour, currency=organization.currency,
        by_product=dict(by_product), metered_until=chunk.watermark if chunk else None, open_hour=open_hour,
    )


@dataclass
class RunningLine:
    resource: Resource
    product: Product
    addon: bool
    hourly_rate: Decimal | None  # None: no price for this state


def running_costs(*, organization: Organization, now: datetime) -> list[RunningLine]:
    """What each live resource (and its add-ons) costs per hour right now."""
    resources = list(Resource.objects.filter(organization=organization, state__in=LIVE_STATES)
                     .select_related("product").order_by("name"))
    addons = defaultdict(list)
    minute = to_minute(now)
    for a in (AddonAttachment.objects.filter(resource__in=resources, start_minute__lte=minute)
              .filter(Q(end_minute__isnull=True) | Q(end_minute__gt=minute)).select_related("product")):
        addons[a.resource_id].append(a.product)
    lines: list[RunningLine] = []
    for r in resources:
        lines.append(RunningLine(r, r.product, False, None))
        lines.extend(RunningLine(r, p, True, None) for p in addons[r.pk])
    resolved = resolve_many([(organization.pk, line.product.pk, line.resource.state) for line in lines], at=now)
    per_month_hours = Decimal(minutes_in_month(now)) / 60
    for line, price in zip(lines, resolved, strict=True):
        if price is None or (line.addon and line.resource.product.billing_model == BillingModel.MONTHLY
                             and price.unit != PriceUnit.MONTH):
            continue
        if price.unit == PriceUnit.HOUR:
            line.hourly_rate = price.amount
        elif price.unit == PriceUnit.MONTH:
            line.hourly_rate = price.amount / per_month_hours
    return lines


def daily_cost_by_product(*, organization: Organization, days: int, today: date) -> tuple[list[date], dict]:
    """{product code: [amount per day]} for the `days` days ending `today`."""
    first = today - timedelta(days=days - 1)
    series: dict[str, list[Decimal]] = {}
    index = {first + timedelta(days=i): i for i in range(days)}
    for day, code, amount in (UsageDaily.objects.filter(organization=organization, day__gte=first, day__lte=today)
                              .values_list("day", "product__code").annotate(Sum("amount")).order_by("day")):
        series.setdefault(code, [ZERO] * days)[index[day]] += amount
    return list(index), series
