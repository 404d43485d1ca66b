"""The billing pipeline: an ordered list of handlers over one shared context.

`settings.BILLING_PIPELINES["scheduled"]` names every step by dotted path, ending with
finalize (store, number, PDF) and notify. The on-demand engine's pipeline is derived
from it each time it runs: the same steps without those with side effects, so an interim
invoice is computed exactly like the monthly one, a step added later included, and
nothing is stored, numbered or sent. Settings do not list it.

A handler is any callable taking the context (a class with `__call__` or a function).
It reads and writes the `Bill` of each organisation in `ctx.bills`; a handler that adds
charges appends `Line`s, rounding each amount once with `core.money.round_money`.

Each handler declares, as attributes (`@step(...)` sets them on a function):

- `provides`: the facets of the bills it fills in, e.g. "charges" (charge lines), "lines"
  (any line), "taxes", "totals";
- `requires`: the facets it reads; every *other* step providing one of them must run
  before it, and at least one must;
- `side_effects` (default False): it stores, numbers or sends, so on demand skips it.

The system checks (invoices/checks.py) refuse to start with a step that cannot be
imported (`invoices.E002`), declares nothing (`E003`), is listed twice or runs before
what it requires (`E004`); `handlers()` refuses the same at use, so a worker started
without the checks cannot bill out of order either.
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
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from accounts.models import Organization
from core.money import ZERO, round_money

SCHEDULED = "scheduled"
ON_DEMAND = "on_demand"
# Pipelines computed from another when used, never listed in settings: name → source.
DERIVED = {ON_DEMAND: SCHEDULED}


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


def step(
    *, requires: Iterable[str] = (), provides: Iterable[str] = (), side_effects: bool = False
) -> Callable[[Handler], Handler]:
    """Declare what a function handler requires and provides (classes set the same
    attributes themselves)."""

    def declare(handler: Any) -> Handler:
        handler.requires, handler.provides = frozenset(requires), frozenset(provides)
        handler.side_effects = side_effects
        return handler

    return declare


@cache
def _load(path: str) -> Handler:
    obj = import_string(path)
    return obj() if isinstance(obj, type) else obj


def pipeline_paths(name: str) -> list[str]:
    """The dotted paths of pipeline `name`, in order: as settings list them, or for a
    derived pipeline (on demand) its source's without the steps with side effects."""
    configured = settings.BILLING_PIPELINES
    if name in DERIVED and name in configured:
        raise ImproperlyConfigured(
            f"BILLING_PIPELINES[{name!r}] is derived from {DERIVED[name]!r} when it runs; remove it from settings."
        )
    source = DERIVED.get(name, name)
    try:
        paths = list(configured[source])
    except KeyError:
        raise KeyError(f"No billing pipeline named {source!r} in settings.BILLING_PIPELINES") from None
    if name in DERIVED:
        paths = [p for p in paths if not getattr(_load(p), "side_effects", False)]
    return paths


def order_problems(paths: list[str]) -> list[tuple[str, str]]:
    """(check id, message) for each step of `paths` that declares no `requires` or
    `provides`, is listed twice, or runs before a step providing what it requires."""
    loaded = [_load(p) for p in paths]
    provides = [getattr(h, "provides", None) or frozenset() for h in loaded]
    problems = []
    for i, (path, handler) in enumerate(zip(paths, loaded, strict=True)):
        undeclared = [a for a in ("requires", "provides") if not isinstance(getattr(handler, a, None), frozenset)]
        if undeclared:
            problems.append(("invoices.E003", f"{path} declares no {' or '.join(undeclared)} (a frozenset)."))
        if path in paths[:i]:
            problems.append(("invoices.E004", f"{path} is listed twice."))
        for facet in sorted(getattr(handler, "requires", None) or ()):
            earlier = [p for p, given in zip(paths[:i], provides[:i], strict=True) if facet in given]
            later = [p for p, given in zip(paths[i + 1:], provides[i + 1:], strict=True) if facet in given]
            if later:
                problems.append(("invoices.E004", f"{path} requires {facet!r} complete, but {', '.join(later)} "
                                                  "provides it later."))
            elif not earlier:
                problems.append(("invoices.E004", f"{path} requires {facet!r}, which no step before it provides."))
    return problems


@cache
def _checked(paths: tuple[str, ...]) -> None:
    problems = order_problems(list(paths))
    if problems:
        raise ImproperlyConfigured(" ".join(message for _id, message in problems))


def handlers(name: str) -> list[Handler]:
    paths = pipeline_paths(name)
    _checked(tuple(paths))
    return [_load(p) for p in paths]


def run_pipeline(name: str, ctx: BillingContext) -> BillingContext:
    for handler in handlers(name):
        had_bills = bool(ctx.bills)
        handler(ctx)
        if had_bills and not ctx.bills:
            break  # every organisation turned out to have nothing to bill
    return ctx
