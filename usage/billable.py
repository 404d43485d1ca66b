"""Measured against billable: what the platform reported for a resource in a month, what
of it was billed, what was not and why, what minimum billable time added and what a
monthly cap saved (issue 19, item 5; the portal's resource page and
`GET /api/v1/resources/{id}/billable?month=YYYY-MM`).

- *Measured* minutes come from the resource's history (`StateInterval`, kept for ever):
  every minute of the month in each state, `deleted` excluded, up to the cut-off.
- *Billable* minutes and amounts come from the rollups (`UsageDaily` for whole days,
  `UsageHourly` for the cut-off's day), which are sums of the rated spans, so they are
  what invoices read. Of those, `minimum_minutes`/`minimum_amount` are what minimum
  billable time added and `cap_saved` what a monthly cap took off (usage.rollups).
- *Excluded* = measured − billable per state, with the reason: a transitional or error
  state has no price unless the price book sets one; a billable state (running, stopped,
  hibernated) without a price in force is free there.

The cut-off is the month-to-date figure's (`spend_cutoff`: everything below it is rated
and rolled up), so for the current month both sides stop at the same minute. A late event
changes the history at once and the billed side at the next metering slice (a reversal
and a correction): until then a state can show more billable than measured minutes, and
the line says so.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils import timezone

from core.money import ZERO
from pricing.models import BILLABLE_STATES, Product, ProductKind, ResourceState
from usage.models import AddonAttachment, Resource, StateInterval, UsageDaily, UsageHourly
from usage.models.resources import from_minute, to_minute
from usage.spend import spend_cutoff

TRANSITIONAL = frozenset({ResourceState.PROVISIONING, ResourceState.STARTING, ResourceState.STOPPING,
                          ResourceState.HIBERNATING})
STATE_ORDER = [ResourceState.RUNNING, ResourceState.STOPPED, ResourceState.HIBERNATED, ResourceState.PROVISIONING,
               ResourceState.STARTING, ResourceState.STOPPING, ResourceState.HIBERNATING, ResourceState.ERROR]


class MonthError(ValueError):
    pass


@dataclass
class StateLine:
    state: str
    label: str
    measured_minutes: int
    billable_minutes: int
    amount: Decimal  # 12 places, what the rated spans cost in this state (minimum time included)
    reason: str  # why minutes were excluded ("" when none were)

    @property
    def excluded_minutes(self) -> int:
        return max(self.measured_minutes - self.billable_minutes, 0)


@dataclass
class AddonLine:
    product: Product
    attached_minutes: int  # attached while the server existed (not deleted)
    billable_minutes: int
    amount: Decimal
    cap_saved: Decimal


@dataclass
class MeasuredBillable:
    resource: Resource
    month: date  # first day
    start: datetime
    end: datetime  # the month's end or the cut-off, whichever is first
    complete: bool  # the whole month is rated and rolled up
    currency: str
    states: list[StateLine]
    addons: list[AddonLine]
    minimum_minutes: int = 0
    minimum_amount: Decimal = ZERO
    cap_saved: Decimal = ZERO  # server and add-ons
    notes: list[str] = field(default_factory=list)

    @property
    def measured_minutes(self) -> int:
        return sum(s.measured_minutes for s in self.states)

    @property
    def billable_minutes(self) -> int:
        """Minutes billed for time the resource was measured in (minimum time not included)."""
        return sum(s.billable_minutes for s in self.states)

    @property
    def excluded_minutes(self) -> int:
        return sum(s.excluded_minutes for s in self.states)

    @property
    def amount(self) -> Decimal:
        return sum((s.amount for s in self.states), ZERO) + sum((a.amount for a in self.addons), ZERO)


def parse_month(value: str | None, *, today: date) -> date:
    """`YYYY-MM` (empty: this month) → its first day; the future is refused."""
    if not value:
        return today.replace(day=1)
    try:
        month = datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise MonthError("Give the month as YYYY-MM.") from None
    if month > today.replace(day=1):
        raise MonthError("That month has not started yet.")
    return month


def _next_month(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


def _reason(state: str, measured: int, billable: int) -> str:
    if billable > measured:
        return "A late event is being rated again; the next metering run corrects this line."
    if measured == billable:
        return ""
    if state == ResourceState.ERROR:
        return "Error state: not billed."
    if state in TRANSITIONAL:
        return "Transitional state: not billed."
    if billable == 0:
        return "No price for this state: free."
    return "No price in force for part of the time: free then."


def measured_vs_billable(*, resource: Resource, month: date, now: datetime | None = None) -> MeasuredBillable:
    now = now or timezone.now()
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    month_end = datetime.combine(_next_month(month), datetime.min.time(), tzinfo=UTC)
    cutoff = spend_cutoff(organization=resource.organization, now=now)
    end = min(month_end, cutoff) if cutoff is not None else start
    end = max(end, start)
    lo, hi = to_minute(start), to_minute(end)

    # Measured: the history clipped to [lo, hi), per state.
    measured: dict[str, int] = defaultdict(int)
    live: list[tuple[int, int]] = []  # the server's non-deleted stretches, for its add-ons
    for s, e, state in (StateInterval.objects.filter(resource=resource, start_minute__lt=hi)
                        .filter(Q(end_minute__isnull=True) | Q(end_minute__gt=lo))
                        .values_list("start_minute", "end_minute", "eff_state")):
        s, e = max(s, lo), min(e if e is not None else hi, hi)
        if s < e and state != ResourceState.DELETED:
            measured[state] += e - s
            live.append((s, e))

    # Billable: whole days from the daily rollup, the cut-off's day from the hourly one.
    whole_days_end = end.date()
    fields = ("product_id", "state")
    sums = {"minutes": Sum("minutes"), "amount": Sum("amount"), "minimum_minutes": Sum("minimum_minutes"),
            "minimum_amount": Sum("minimum_amount"), "cap_saved": Sum("cap_saved")}
    rows = list(UsageDaily.objects.filter(resource=resource, day__gte=start.date(), day__lt=whole_days_end)
                .values(*fields).annotate(**sums))
    if end > datetime.combine(whole_days_end, datetime.min.time(), tzinfo=UTC):
        day_start = datetime.combine(whole_days_end, datetime.min.time(), tzinfo=UTC)
        rows += list(UsageHourly.objects.filter(resource=resource, hour__gte=day_start, hour__lt=end)
                     .values(*fields).annotate(**sums))
    products = Product.objects.in_bulk({r["product_id"] for r in rows})

    billed: dict[str, list] = defaultdict(lambda: [0, ZERO])
    addon_rows: dict[int, list] = defaultdict(lambda: [0, ZERO, ZERO])
    result = MeasuredBillable(resource=resource, month=month, start=start, end=end, complete=end >= month_end,
                              currency=resource.organization.currency, states=[], addons=[])
    for r in rows:
        if products[r["product_id"]].kind == ProductKind.ADDON:
            a = addon_rows[r["product_id"]]
            a[0] += r["minutes"] - r["minimum_minutes"]
            a[1] += r["amount"]
            a[2] += r["cap_saved"]
        else:
            b = billed[r["state"]]
            b[0] += r["minutes"] - r["minimum_minutes"]
            b[1] += r["amount"]
        result.minimum_minutes += r["minimum_minutes"]
        result.minimum_amount += r["minimum_amount"]
        result.cap_saved += r["cap_saved"]

    labels = dict(ResourceState.choices)
    for state in STATE_ORDER:
        m, (b, amount) = measured.get(state, 0), billed.get(state, (0, ZERO))
        if m or b:
            result.states.append(StateLine(state, labels[state], m, b, amount, _reason(state, m, b)))

    attachments = (AddonAttachment.objects.filter(resource=resource, start_minute__lt=hi)
                   .filter(Q(end_minute__isnull=True) | Q(end_minute__gt=lo)).values_list("product_id", "start_minute",
                                                                                          "end_minute"))
    attached: dict[int, int] = defaultdict(int)
    for product_id, s, e in attachments:
        s, e = max(s, lo), min(e if e is not None else hi, hi)
        attached[product_id] += sum(max(0, min(e, le) - max(s, ls)) for ls, le in live)
    products.update(Product.objects.in_bulk(set(attached) - set(products)))
    for product_id in sorted(set(attached) | set(addon_rows), key=lambda p: products[p].name):
        minutes, amount, saved = addon_rows.get(product_id, (0, ZERO, ZERO))
        result.addons.append(AddonLine(products[product_id], attached.get(product_id, 0), minutes, amount, saved))

    if not result.complete:
        result.notes.append(f"Rated and rolled up until {from_minute(hi):%Y-%m-%d %H:%M} UTC; the hour in progress "
                            "is charged to the balance but not yet stored per resource.")
    if any(s.state in BILLABLE_STATES and s.billable_minutes == 0 and s.measured_minutes for s in result.states):
        result.notes.append("A state without a price is free: the price book sets none for it.")
    return result
