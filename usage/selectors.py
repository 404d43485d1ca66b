"""Reads of usage for the API, the portal and other apps.

Hour and day series come from the rollups (rolled up within a minute of metering);
minute series from the per-minute detail (kept `USAGE_DETAIL_RETENTION_DAYS`). Month to
date is not computed here: it is the interim invoice's (`settings.MONTH_TO_DATE`), cut off
at `usage_complete_until`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import F, Min, Q, Sum
from django.utils.module_loading import import_string

from accounts.models import Organization
from core.money import ZERO
from pricing.models import BillingModel, PriceUnit, Product
from pricing.proration import minutes_in_month
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


def usage_complete_until(*, organization: Organization) -> datetime | None:
    """The minute before which every minute of the organisation's usage is rated, stored as
    spans and rolled up: its chunk's `rated_minute` (the open hour is only accrued per
    organisation until its chunk closes it), held back to the start of any run of that
    chunk (or an import) not yet rolled up. None: never metered. The month-to-date figure
    (`settings.MONTH_TO_DATE`) is cut off here, so what it reads is complete."""
    from usage.metering import chunk_count
    from usage.models import MeteringChunk

    chunk = MeteringChunk.objects.filter(number=organization.pk % chunk_count()).first()
    if chunk is None or chunk.rated_minute is None:
        return None
    pending = (MeteringRun.objects.filter(rolled_up_at__isnull=True, until_minute__gt=F("from_minute"))
               .filter(Q(chunk=chunk.number) | Q(chunk__isnull=True))
               .aggregate(first=Min("from_minute"))["first"])
    return from_minute(min(chunk.rated_minute, pending) if pending is not None else chunk.rated_minute)


def month_to_date(*, organization: Organization, now: datetime | None = None) -> Any:
    """The one month-to-date figure, for usage's pages: `settings.MONTH_TO_DATE` (the
    interim invoice, `invoices.month_to_date`), reached through the setting because
    invoices come after usage."""
    return import_string(settings.MONTH_TO_DATE)(organization=organization, now=now)


def month_to_date_for_request(request: Any, organization: Organization) -> Any:
    """`month_to_date` once per request, so the dashboard's cards show one computation."""
    cache = request.__dict__.setdefault("_month_to_date", {})
    if organization.pk not in cache:
        cache[organization.pk] = month_to_date(organization=organization)
    return cache[organization.pk]


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
    """{product name: [amount per day]} for the `days` days ending `today`, by product name
    (a stable order: a product keeps its colour from one day to the next)."""
    first = today - timedelta(days=days - 1)
    series: dict[str, list[Decimal]] = {}
    index = {first + timedelta(days=i): i for i in range(days)}
    for day, name, amount in (UsageDaily.objects.filter(organization=organization, day__gte=first, day__lte=today)
                              .values_list("day", "product__name").annotate(Sum("amount")).order_by("day")):
        series.setdefault(name, [ZERO] * days)[index[day]] += amount
    return list(index), dict(sorted(series.items()))
