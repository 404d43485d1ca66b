"""The billing pipeline: an ordered list of handlers over one shared context.

`settings.BILLING_PIPELINES` names the handlers of each engine by dotted path:

- "scheduled": every step, ending with finalize (store, number, PDF) and notify;
- "on_demand": the same steps without finalize and notify, so an interim invoice is
  computed exactly like the monthly one and nothing is stored, numbered or sent.

A handler is any callable taking the context (a class with `__call__` or a function).
It reads and writes the `Bill` of each organisation in `ctx.bills`; a handler that adds
charges appends `Line`s, rounding each amount once with `core.money.round_money`.
Adding a step is adding a handler to the list in settings; the engine never changes.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from accounts.models import Organization
from core.money import ZERO, round_money

SCHEDULED = "scheduled"
ON_DEMAND = "on_demand"


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    """The calendar month [start, end) in UTC."""
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC) if month == 12 else datetime(year, month + 1, 1, tzinfo=UTC)
    return start, end


def month_containing(at: datetime) -> tuple[datetime, datetime]:
    at = at.astimezone(UTC)
    return month_bounds(at.year, at.month)


def previous_month(at: datetime) -> tuple[datetime, datetime]:
    """The last calendar month that closed before `at`: a run started days late still
    bills the month before the one it runs in."""
    start, _ = month_containing(at)
    prev = start.replace(day=1)
    year, month = (prev.year - 1, 12) if prev.month == 1 else (prev.year, prev.month - 1)
    return month_bounds(year, month)


def minutes_between(start: datetime, end: datetime) -> int:
    return int((end - start).total_seconds()) // 60


def days_in_month(start: datetime) -> int:
    return calendar.monthrange(start.year, start.month)[1]


@dataclass
class Line:
    """An invoice line before it is stored. `amount` is already rounded."""

    kind: str
    description: str
    amount: Decimal
    group: str = ""
    quantity: Decimal = ZERO
    unit: str = ""
    unit_price: Decimal = ZERO
    product_code: str = ""
    product_id: int | None = None
    resource_id: int | None = None
    price_id: int | None = None
    state: str = ""
    service_start: datetime | None = None
    service_end: datetime | None = None
    coupon_redemption_id: int | None = None
    tax_rate: Decimal = ZERO
    tax_amount: Decimal = ZERO
    # Charged already through the credit ledger by metering (prepaid usage).
    settled_by_metering: bool = False


@dataclass
class Bill:
    """One organisation's invoice as the handlers build it."""

    organization: Organization
    currency: str
    lines: list[Line] = field(default_factory=list)
    subtotal: Decimal = ZERO
    discount_total: Decimal = ZERO
    tax_total: Decimal = ZERO
    total: Decimal = ZERO
    credit_applied: Decimal = ZERO
    balance_forward: Decimal = ZERO
    amount_due: Decimal = ZERO
    due_at: datetime | None = None
    is_statement: bool = False
    tax_note: str = ""
    carried_invoice_ids: list[int] = field(default_factory=list)
    # Raw inputs gathered for this organisation, keyed by the handler that reads them.
    inputs: dict[str, Any] = field(default_factory=dict)
    invoice_id: int | None = None

    def add(self, line: Line) -> Line:
        line.amount = round_money(line.amount, self.currency)
        self.lines.append(line)
        return line

    @property
    def charge_lines(self) -> list[Line]:
        from invoices.models import LineKind

        return [ln for ln in self.lines if ln.kind != LineKind.DISCOUNT]

    @property
    def has_charges(self) -> bool:
        return bool(self.lines) or self.balance_forward != ZERO


@dataclass
class BillingContext:
    mode: str
    # The calendar month being billed, and the span of it this run covers: the whole
    # month for the scheduled engine, [period_start, until) for an interim invoice.
    period_start: datetime
    period_end: datetime
    span_start: datetime
    span_end: datetime
    organization_ids: list[int]
    now: datetime
    bills: dict[int, Bill] = field(default_factory=dict)
    # Two independent switches for the scheduled run's side effects after commit:
    # finalize renders each issued invoice's PDF, notify emails each one (an email
    # renders its PDF itself when there is none yet). Both off unless a caller asks.
    render_pdf: bool = False
    send_email: bool = False
    # The scheduled run this belongs to, if any.
    run_id: int | None = None
    # Organisations whose finalization failed, with the error: finalize stores and numbers
    # each organisation in its own transactions, so one failure leaves the others billed.
    failures: dict[int, Exception] = field(default_factory=dict)

    @property
    def closes_period(self) -> bool:
        """Per-period charges (contract minimum, fixed discounts) belong to the span that
        ends the period, so an interim invoice plus the rest of the month is the month."""
        return self.span_end >= self.period_end

    @property
    def is_interim(self) -> bool:
        return self.mode == ON_DEMAND


Handler = Callable[[BillingContext], None]


@cache
def _load(path: str) -> Handler:
    obj = import_string(path)
    return obj() if isinstance(obj, type) else obj


def handlers(name: str) -> list[Handler]:
    try:
        paths: Iterable[str] = settings.BILLING_PIPELINES[name]
    except KeyError:
        raise KeyError(f"No billing pipeline named {name!r} in settings.BILLING_PIPELINES") from None
    return [_load(p) for p in paths]


def run_pipeline(name: str, ctx: BillingContext) -> BillingContext:
    for handler in handlers(name):
        had_bills = bool(ctx.bills)
        handler(ctx)
        if had_bills and not ctx.bills:
            break  # every organisation turned out to have nothing to bill
    return ctx
