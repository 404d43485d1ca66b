"""The spend explorer's reads: spend over a date range by day, ISO week or month, grouped by
product or resource; the month to date per resource; the forecast to month end.

**Every amount is what the invoices say.** An invoice line is one resource, product,
state and price over a calendar month (UTC), its metered sum rounded once
(`invoices.sources.usage_rows`, `Bill.add`). The explorer reads the same hourly rollups
and, per such line, splits the line's rounded amount over the days it has usage in
(largest remainder in minor units: each day gets its exact amount rounded down, and the
units still missing go one each to the days with the largest fractions). So every cell is
whole cents, and days, weeks, months, products and resources all add up to the same
total, which for a month is the usage subtotal of that month's invoice (the interim
invoice for the month so far: the same cut-off, `usage_complete_until`, as
`settings.MONTH_TO_DATE`). Metered overage (quantities of `metered` events) and contract
minimums are invoice lines without hourly rollups: they are on the invoice, not here.

Days are read from the hourly rollups, not the daily ones, so that a day can be taken in
another time zone than UTC: `spend_zone()` is the hook (UTC today; a per-user display zone
plugs in there). Invoice months stay UTC months whatever the display zone.

Periods are half-open, `[start, end)`; a week is an ISO week (Monday to Monday).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_FLOOR, Decimal

from django.conf import settings
from django.db.models import Sum
from django.db.models.functions import TruncDate, TruncMonth

from accounts.models import Organization
from core.formatting import format_date
from core.money import ZERO, minor_unit_exponent, round_money
from pricing.models import Product
from pricing.proration import month_start
from usage.models import Resource, UsageHourly
from usage.selectors import running_costs, usage_complete_until

INTERVALS = ("day", "week", "month")
# A year and a day (a leap year's 366 days): a range people ask for; longer is refused.
MAX_RANGE_DAYS = 366


def spend_zone(*, user: object = None) -> tzinfo:
    """The zone the explorer's days, weeks and months are taken in: UTC for everyone, as
    the invoices' months are (the page says so), even for a user who picked a display
    time zone for times. Returning theirs here would cut days in their zone (the
    selectors take `zone=`), at the price of days that no longer add up to the UTC
    months the invoices bill; not done."""
    return UTC


# --- Groupings ------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    key: str  # stable, for the API and CSV: a product code, a resource's external id
    name: str  # for people: the product's name, the resource's name
    detail: str = ""  # a second line: the resource's product, its external id


@dataclass(frozen=True)
class Grouping:
    """How spend rows are grouped: `key_of` picks the id a row is grouped by from its
    (resource id, product id); `groups` names those ids. A grouping by something the
    resource carries (its project, a label) sets `by_resource` instead of `key_of`: one
    query maps the rows' resource ids to their keys (`by_resource(ids, label_key)`).
    A resource is counted under its project and labels as they are now, not as they were
    when the spend happened (moving a resource moves its past spend with it)."""

    label: str
    key_of: Callable[[int, int], Hashable] | None
    groups: Callable[[Iterable], dict]
    by_resource: Callable[[set[int], str], dict[int, Hashable]] | None = None


def _product_groups(ids: Iterable[int]) -> dict[int, Group]:
    return {p.pk: Group(key=p.code, name=p.name) for p in Product.objects.filter(pk__in=set(ids))}


def _resource_groups(ids: Iterable[int]) -> dict[int, Group]:
    return {r.pk: Group(key=r.external_id, name=r.name or r.external_id, detail=r.product.name)
            for r in Resource.objects.filter(pk__in=set(ids)).select_related("product")}


NO_PROJECT = Group(key="", name="No project")


def _project_of(ids: set[int], _label_key: str) -> dict[int, Hashable]:
    return dict(Resource.objects.filter(pk__in=ids).values_list("pk", "project_id"))


def _project_groups(ids: Iterable) -> dict:
    from usage.models import Project

    found: dict = {p.pk: Group(key=p.slug, name=p.name)
                   for p in Project.objects.filter(pk__in={i for i in ids if i is not None})}
    return {**found, None: NO_PROJECT}


def _label_of(ids: set[int], label_key: str) -> dict[int, Hashable]:
    return {pk: labels.get(label_key) if isinstance(labels, dict) else None
            for pk, labels in Resource.objects.filter(pk__in=ids).values_list("pk", "labels")}


def _label_groups(ids: Iterable) -> dict:
    # Not labelled: key "" (no label value is empty *and* unset); an empty value: key '""'.
    return {v: Group(key="", name="Not labelled") if v is None else Group(key=v or '""', name=v or "(empty value)")
            for v in ids}


GROUPINGS: dict[str, Grouping] = {
    "product": Grouping("Product", lambda resource_id, product_id: product_id, _product_groups),
    "resource": Grouping("Resource", lambda resource_id, product_id: resource_id, _resource_groups),
    "project": Grouping("Project", None, _project_groups, _project_of),
    # The value of one label, its key given as `label_key` (`?group_by=label&label_key=team`).
    "label": Grouping("Label", None, _label_groups, _label_of),
}


# --- Exact cents ----------------------------------------------------------------------


def split_rounded(amounts: list[Decimal], currency: str) -> list[Decimal]:
    """`amounts` (unrounded, any sign) rounded to whole minor units so that they add up to
    `round_money(sum(amounts))` exactly: each is rounded down, and the units still missing
    (0 to len(amounts) of them, whatever the signs) go one each to the largest fractions,
    earlier first on ties."""
    unit = Decimal(1).scaleb(-minor_unit_exponent(currency))
    target = round_money(sum(amounts, ZERO), currency)
    floors = [(a / unit).to_integral_value(rounding=ROUND_FLOOR) for a in amounts]
    missing = int((target / unit) - sum(floors, ZERO))
    order = sorted(range(len(amounts)), key=lambda i: (-(amounts[i] / unit - floors[i]), i))
    parts = list(floors)
    for i in order[:missing]:
        parts[i] += 1
    return [p * unit for p in parts]


# --- Periods --------------------------------------------------------------------------


def period_of(day: date, interval: str) -> date:
    """The first day of the day's period: itself, its ISO week's Monday, its month's 1st."""
    if interval == "day":
        return day
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown interval {interval!r}")


def _next_period(start: date, interval: str) -> date:
    if interval == "day":
        return start + timedelta(days=1)
    if interval == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def periods(start: date, end: date, interval: str) -> list[tuple[date, date]]:
    """The periods of `[start, end)`, each clipped to the range: `[(first day, day after)]`."""
    out = []
    p = period_of(start, interval)
    while p < end:
        nxt = _next_period(p, interval)
        out.append((max(p, start), min(nxt, end)))
        p = nxt
    return out


def range_error(start: date, end: date, *, today: date) -> tuple[str, str] | None:
    """(field, message) when `[start, end)` cannot be explored, else None."""
    if end <= start:
        return "end", "The end must be after the start."
    if (end - start).days > MAX_RANGE_DAYS:
        return "end", f"At most {MAX_RANGE_DAYS} days at a time; pick a shorter range."
    earliest = earliest_start(today)
    if start < earliest:
        return "start", f"Spend by the hour is kept from {format_date(earliest)}; older months are on your invoices."
    if start > today:
        return "start", "The start is in the future."
    return None


def earliest_start(today: date) -> date:
    """The first day of the first month whose hourly rollups are all still kept
    (`USAGE_HOURLY_RETENTION_DAYS`): an older month would no longer add up to its invoice."""
    oldest_kept = today - timedelta(days=settings.USAGE_HOURLY_RETENTION_DAYS)
    return _next_period(oldest_kept.replace(day=1), "month")


# --- Reads ----------------------------------------------------------------------------


def spend_cutoff(*, organization: Organization, now: datetime) -> datetime | None:
    """Spend is read below this instant: the month-to-date figure's `as_of`
    (`invoices.month_to_date`), the minute up to which usage is metered and rolled up."""
    complete = usage_complete_until(organization=organization)
    return None if complete is None else min(complete, now)


def daily_spend(*, organization: Organization, start: date, end: date, now: datetime,
                zone: tzinfo = UTC) -> dict[tuple[date, int, int], Decimal]:
    """{(day, resource id, product id): amount in whole minor units} for the days of
    `[start, end)` in `zone`, each invoice line's rounded amount split over its days."""
    cutoff = spend_cutoff(organization=organization, now=now)
    if cutoff is None:
        return {}
    first = datetime(start.year, start.month, start.day, tzinfo=zone)
    last = datetime(end.year, end.month, end.day, tzinfo=zone)
    # Whole invoice months around the range: a line's rounding needs all of its month.
    lo = month_start(first.astimezone(UTC))
    hi = min(_next_month(month_start((last - timedelta(microseconds=1)).astimezone(UTC))), cutoff)
    rows = (UsageHourly.objects.filter(organization=organization, hour__gte=lo, hour__lt=hi)
            .annotate(month=TruncMonth("hour", tzinfo=UTC), day=TruncDate("hour", tzinfo=zone))
            .values("month", "resource_id", "product_id", "state", "price_id", "day")
            .annotate(amount=Sum("amount")).order_by("month", "resource_id", "product_id", "state", "price_id", "day"))
    lines: dict[tuple, list[tuple[date, Decimal]]] = defaultdict(list)
    for r in rows:
        lines[(r["month"], r["resource_id"], r["product_id"], r["state"], r["price_id"])].append((r["day"], r["amount"]))
    out: dict[tuple[date, int, int], Decimal] = defaultdict(lambda: ZERO)
    for (_month, resource_id, product_id, _state, _price), days in lines.items():
        for (day, _amount), cents in zip(days, split_rounded([a for _, a in days], organization.currency),
                                         strict=True):
            if start <= day < end and cents:
                out[(day, resource_id, product_id)] += cents
    return dict(out)


def _next_month(start: datetime) -> datetime:
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


@dataclass
class SpendSeries:
    group: Group
    amounts: list[Decimal]  # one per period
    total: Decimal = ZERO


@dataclass
class Spend:
    start: date
    end: date  # exclusive
    interval: str
    group_by: str
    currency: str
    as_of: datetime | None  # spend is complete below this instant
    zone: str
    periods: list[tuple[date, date]]
    series: list[SpendSeries] = field(default_factory=list)  # largest total first, then by name
    label_key: str = ""  # group_by "label": the label's key

    @property
    def period_totals(self) -> list[Decimal]:
        return [sum((s.amounts[i] for s in self.series), ZERO) for i in range(len(self.periods))]

    @property
    def total(self) -> Decimal:
        return sum((s.total for s in self.series), ZERO)


def spend(*, organization: Organization, start: date, end: date, interval: str, group_by: str, now: datetime,
          zone: tzinfo = UTC, label_key: str = "") -> Spend:
    """Spend over `[start, end)` per period of `interval` and group of `group_by`
    (`label_key`: the label whose values group it, for `group_by="label"`)."""
    grouping = GROUPINGS[group_by]
    if group_by == "label" and not label_key:
        raise ValueError("grouping by label needs the label's key")
    spans = periods(start, end, interval)
    index = {p[0]: i for i, p in enumerate(spans)}
    by_group: dict[Hashable, list[Decimal]] = {}
    daily = daily_spend(organization=organization, start=start, end=end, now=now, zone=zone)
    of_resource = (grouping.by_resource({r for _d, r, _p in daily}, label_key)
                   if grouping.by_resource is not None else {})
    for (day, resource_id, product_id), cents in daily.items():
        key = (grouping.key_of(resource_id, product_id) if grouping.key_of is not None
               else of_resource.get(resource_id))
        amounts = by_group.setdefault(key, [ZERO] * len(spans))
        amounts[index[max(period_of(day, interval), start)]] += cents
    groups = grouping.groups(by_group)
    series = [SpendSeries(group=groups[k], amounts=a, total=sum(a, ZERO)) for k, a in by_group.items()]
    series.sort(key=lambda s: (-s.total, s.group.name, s.group.key))
    return Spend(label_key=label_key if group_by == "label" else "", start=start, end=end, interval=interval, group_by=group_by, currency=organization.currency,
                 as_of=spend_cutoff(organization=organization, now=now), zone=str(zone), periods=spans,
                 series=series)


@dataclass
class ResourceForecast:
    group: Group
    month_to_date: Decimal
    hourly_rate: Decimal  # what it costs per hour now (0: stopped without a price, deleted)
    forecast: Decimal


@dataclass
class Forecast:
    """The month so far and where it is heading: month to date (the interim invoice's
    usage subtotal) plus the live resources' burn rate now (`running_costs`, per hour)
    times the hours from the cut-off to month end, rounded once and split over the
    resources (and, on the page, over the days to come) by largest remainder, so every
    breakdown adds up to it. An estimate: it assumes what runs now keeps running and
    nothing else starts, and it ignores monthly caps (an upper bound for capped products)."""

    month: date
    as_of: datetime | None
    currency: str
    month_to_date: Decimal
    hourly_rate: Decimal
    hours_left: Decimal
    forecast: Decimal
    resources: list[ResourceForecast]


def forecast(*, organization: Organization, now: datetime) -> Forecast:
    first = month_start(now)
    end = _next_month(first)
    current = spend(organization=organization, start=first.date(), end=end.date(), interval="month",
                    group_by="resource", now=now)
    from_ = max(current.as_of or now, first)
    hours_left = Decimal(int((end - from_).total_seconds()) // 60) / 60
    rates: dict[int, Decimal] = defaultdict(lambda: ZERO)
    names: dict[int, Group] = {}
    for line in running_costs(organization=organization, now=now):
        rates[line.resource.pk] += line.hourly_rate or ZERO
        names[line.resource.pk] = Group(key=line.resource.external_id, name=line.resource.name or
                                        line.resource.external_id, detail=line.resource.product.name)
    # Each resource's share of what is still to come, in whole minor units adding up to the
    # fleet's burn rate times the hours left, rounded once.
    pk_by_key = {g.key: pk for pk, g in names.items()}
    spent = {s.group.key: s for s in current.series}
    keys = list(spent) + [names[pk].key for pk in names if names[pk].key not in spent and rates[pk]]
    groups = {**{k: s.group for k, s in spent.items()}, **{g.key: g for g in names.values()}}
    key_rates = [rates.get(pk_by_key.get(k, -1), ZERO) for k in keys]
    ahead = split_rounded([r * hours_left for r in key_rates], organization.currency)
    rows = [ResourceForecast(groups[k], spent[k].total if k in spent else ZERO, r,
                             (spent[k].total if k in spent else ZERO) + a)
            for k, r, a in zip(keys, key_rates, ahead, strict=True)]
    rows.sort(key=lambda r: (-r.forecast, r.group.name, r.group.key))
    rate = sum(rates.values(), ZERO)
    currency = organization.currency
    return Forecast(month=first.date(), as_of=current.as_of, currency=currency, month_to_date=current.total,
                    hourly_rate=rate, hours_left=hours_left, forecast=sum((r.forecast for r in rows), ZERO),
                    resources=rows)


def projected(spans: list[tuple[date, date]], *, hourly_rate: Decimal, since: datetime | None, now: datetime,
              currency: str, zone: tzinfo = UTC) -> list[Decimal]:
    """Per period, what the current burn rate adds from the cut-off (`since`) to the end of
    this month: the forecast drawn on top of the bars, in whole minor units that add up to
    the forecast's rate × hours left when the periods cover the rest of the month.
    Periods before the cut-off or after this month get nothing."""
    first = month_start(now)
    until = _next_month(first)
    since = max(since or now, first)
    exact = []
    for a, b in spans:
        lo = max(datetime(a.year, a.month, a.day, tzinfo=zone), since)
        hi = min(datetime(b.year, b.month, b.day, tzinfo=zone), until)
        minutes = int((hi - lo).total_seconds()) // 60 if hi > lo else 0
        exact.append(hourly_rate * minutes / 60)
    return split_rounded(exact, currency) if exact else []
