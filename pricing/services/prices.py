"""List prices: scheduling, ending, rescheduling and cancelling effective-dated prices.

A price that has taken effect is only ever ended (from now on); a new one starts where
it ends, and an open-ended predecessor is ended where its successor starts. Prices that
have not started may be rescheduled or cancelled. Which units and pricing models a
billing model allows is `UNITS_FOR_BILLING_MODEL` and `PRICING_MODELS_FOR_BILLING_MODEL`.
Price changes are serialised per product by locking the product row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from accounts.models import ApiKey, User
from core.errors import Conflict, DomainError
from core.money import format_rate, require_decimal
from pricing.models import (
    TIERED_MODELS,
    BillingModel,
    Price,
    PriceTier,
    PriceUnit,
    PricingModel,
    Product,
    ResourceState,
)
from pricing.quantity_pricing import Tier, tier_order, validate_tiers
from pricing.services.common import (
    _audit,
    _currency,
    _money,
    _now,
    _overlapping,
    _period_text,
    _save_checked,
    _whole_minute,
)

# Which units a billing model may be priced in, and with which pricing models.
UNITS_FOR_BILLING_MODEL: dict[str, set[str]] = {
    BillingModel.HOURLY: {PriceUnit.HOUR},
    BillingModel.MONTHLY: {PriceUnit.MONTH, PriceUnit.GB_MONTH},
    BillingModel.ADDON: {PriceUnit.HOUR, PriceUnit.MONTH},
    BillingModel.OVERAGE: {PriceUnit.GB, PriceUnit.UNIT},
}


# A per-minute accrual needs a rate, not a tier table: hourly and add-on prices are per unit.
PRICING_MODELS_FOR_BILLING_MODEL: dict[str, set[str]] = {
    BillingModel.HOURLY: {PricingModel.PER_UNIT},
    BillingModel.ADDON: {PricingModel.PER_UNIT},
    BillingModel.MONTHLY: set(PricingModel),
    BillingModel.OVERAGE: set(PricingModel),
}


@dataclass(frozen=True)
class PriceSpec:
    """A price as asked for, before it is checked and written."""

    product: Product
    currency: str
    amount: Decimal
    valid_from: datetime
    state: str = ResourceState.RUNNING
    unit: str | None = None
    pricing_model: str = PricingModel.PER_UNIT
    valid_to: datetime | None = None
    tiers: Sequence[Tier] = ()
    package_size: Decimal | None = None
    included_quantity: Decimal = Decimal("0")
    monthly_cap: Decimal | None = None
    min_billable_minutes: int = 0
    note: str = ""


def default_unit(product: Product) -> str:
    units: dict[str, str] = {
        BillingModel.HOURLY: PriceUnit.HOUR, BillingModel.MONTHLY: PriceUnit.MONTH,
        BillingModel.ADDON: PriceUnit.HOUR, BillingModel.OVERAGE: PriceUnit.UNIT,
    }
    return units[product.billing_model]


def price_check(spec: PriceSpec, *, now: datetime | None = None, replacing: Price | None = None,
                close_previous: bool = True) -> PriceSpec:
    """Every rule a new price must meet, as DomainErrors people can act on. No writes.

    Returns the spec with defaults filled in. `replacing` is a scheduled price being edited."""
    now = _now(now)
    product = spec.product
    currency = _currency(spec.currency)
    if spec.state not in ResourceState.values:
        raise DomainError(f"Unknown resource state {spec.state!r}.", field="state")
    unit = spec.unit or default_unit(product)
    if unit not in UNITS_FOR_BILLING_MODEL[product.billing_model]:
        allowed = ", ".join(sorted(UNITS_FOR_BILLING_MODEL[product.billing_model]))
        raise DomainError(f"A {product.get_billing_model_display().split(' (')[0].lower()} product is priced "
                          f"per {allowed}, not per {unit}.", field="unit")
    if spec.pricing_model not in PRICING_MODELS_FOR_BILLING_MODEL[product.billing_model]:
        raise DomainError("Hourly and add-on prices accrue by the minute, so they must be per-unit rates.",
                          field="pricing_model")
    amount = _money(spec.amount, "amount")
    tiers = tuple(sorted(spec.tiers, key=tier_order))
    if spec.pricing_model in TIERED_MODELS:
        validate_tiers(tiers)
    elif tiers:
        raise DomainError("Only graduated and volume prices have tiers.", field="tiers")
    package_size = spec.package_size
    if spec.pricing_model == PricingModel.PACKAGE:
        if package_size is None or require_decimal(package_size) <= 0:
            raise DomainError("Package pricing needs a package size above 0.", field="package_size")
    elif package_size is not None:
        raise DomainError("Only package prices have a package size.", field="package_size")
    included = _money(spec.included_quantity, "included_quantity")
    if included and product.billing_model != BillingModel.OVERAGE:
        raise DomainError("Only overage prices include an allowance.", field="included_quantity")
    cap = _money(spec.monthly_cap, "monthly_cap", allow_none=True)
    if cap is not None:
        if unit != PriceUnit.HOUR:
            raise DomainError("Only hourly rates can be capped per month.", field="monthly_cap")
        if cap < amount:
            raise DomainError(f"The monthly cap ({cap}) is below the hourly rate ({amount}); a month would cost "
                              f"less than one hour.", field="monthly_cap")
    if spec.min_billable_minutes and unit != PriceUnit.HOUR:
        raise DomainError("Only hourly rates have a minimum billable time.", field="min_billable_minutes")
    if spec.min_billable_minutes < 0:
        raise DomainError("The minimum billable time cannot be negative.", field="min_billable_minutes")
    _whole_minute(spec.valid_from, "valid_from")
    _whole_minute(spec.valid_to, "valid_to")
    if spec.valid_to is not None and spec.valid_to <= spec.valid_from:
        raise DomainError("A price must end after it starts.", field="valid_to")
    if spec.valid_from < now.replace(second=0, microsecond=0):
        raise DomainError("A new price cannot start in the past: what was charged stays charged. "
                          "Start it now or later.", field="valid_from")
    clashes = _overlapping(
        Price.objects.filter(product=product, currency=currency, state=spec.state, unit=unit),
        spec.valid_from, spec.valid_to,
    )
    if replacing is not None:
        clashes = clashes.exclude(pk=replacing.pk)
    for other in clashes:
        if close_previous and other.valid_to is None and other.valid_from < spec.valid_from:
            continue  # the open-ended predecessor is ended where this one starts
        raise DomainError(
            f"It overlaps the {format_rate(other.amount, other.currency)} price in force {_period_text(other.valid_from, other.valid_to)}. "
            f"End that price first, or start this one when it ends.", field="valid_from",
        )
    return PriceSpec(**{**spec.__dict__, "currency": currency, "unit": unit, "amount": amount, "tiers": tiers,
                        "included_quantity": included, "monthly_cap": cap})


def _write_tiers(price: Price, tiers: Sequence[Tier]) -> None:
    PriceTier.objects.bulk_create(
        PriceTier(price=price, up_to=t.up_to, unit_amount=t.unit_amount, flat_amount=t.flat_amount)
        for t in tiers
    )


@transaction.atomic
def price_create(*, spec: PriceSpec, actor: User | None = None, api_key: ApiKey | None = None,
                 now: datetime | None = None, close_previous: bool = True) -> Price:
    """Schedule a list price. An open-ended price in force before it is ended where it starts."""
    Product.objects.select_for_update().get(pk=spec.product.pk)  # serialises price changes per product
    spec = price_check(spec, now=now, close_previous=close_previous)
    if close_previous:
        for previous in _overlapping(
            Price.objects.filter(product=spec.product, currency=spec.currency, state=spec.state, unit=spec.unit,
                                 valid_to__isnull=True, valid_from__lt=spec.valid_from),
            spec.valid_from, spec.valid_to,
        ):
            previous.valid_to = spec.valid_from
            previous.save(update_fields=["valid_to"])
            _audit("price.ended", actor=actor, api_key=api_key, obj=previous,
                   changes={"valid_to": [None, spec.valid_from], "replaced_by_start": spec.valid_from})
    fields = {k: v for k, v in spec.__dict__.items() if k != "tiers"}
    price = Price(**fields, created_by=actor)
    _save_checked(price)
    _write_tiers(price, spec.tiers)
    _audit("price.created", actor=actor, api_key=api_key, obj=price, changes={
        **{k: v for k, v in fields.items() if k != "product"}, "product": spec.product.code,
        "tiers": [t.__dict__ for t in spec.tiers],
    })
    return price


def price_end_check(*, price: Price, at: datetime, now: datetime | None = None) -> None:
    """May `price` end at `at`? DomainError if not. Ending earlier than planned is allowed,
    later only where no other price starts (the overlap check)."""
    now = _now(now)
    _whole_minute(at, "valid_to")
    if at < now.replace(second=0, microsecond=0):
        raise DomainError("A price cannot be ended in the past: it was already charged.", field="valid_to")
    if at <= price.valid_from:
        raise DomainError("A price must end after it starts; cancel a price that has not started instead.",
                          field="valid_to")
    if price.valid_to is not None and price.valid_to <= at:
        raise DomainError(f"This price already ends at {price.valid_to:%Y-%m-%d %H:%M} UTC; it can only end "
                          f"earlier.", field="valid_to")


@transaction.atomic
def price_end(*, price: Price, at: datetime, actor: User | None = None, api_key: ApiKey | None = None,
              now: datetime | None = None) -> Price:
    """Stop a price at `at` (now or later). The past stays as it was."""
    price = Price.objects.select_for_update().get(pk=price.pk)
    price_end_check(price=price, at=at, now=now)
    old = price.valid_to
    price.valid_to = at
    price.save(update_fields=["valid_to"])
    _audit("price.ended", actor=actor, api_key=api_key, obj=price, changes={"valid_to": [old, at]})
    return price


@transaction.atomic
def price_reschedule(*, price: Price, spec: PriceSpec, actor: User | None = None, api_key: ApiKey | None = None,
                     now: datetime | None = None) -> Price:
    """Change a price that has not started yet (nothing was charged under it)."""
    now = _now(now)
    price = Price.objects.select_for_update().get(pk=price.pk)
    if price.valid_from <= now:
        raise Conflict("This price is already in force; end it and schedule a new one instead.")
    if spec.product.pk != price.product_id:
        raise DomainError("A price cannot move to another product.", field="product")
    spec = price_check(spec, now=now, replacing=price, close_previous=False)
    fields = {k: v for k, v in spec.__dict__.items() if k not in ("tiers", "product")}
    changes = {k: [getattr(price, k), v] for k, v in fields.items() if getattr(price, k) != v}
    for key, value in fields.items():
        setattr(price, key, value)
    _save_checked(price)
    price.tiers.all().delete()
    _write_tiers(price, spec.tiers)
    _audit("price.rescheduled", actor=actor, api_key=api_key, obj=price,
           changes={**changes, "tiers": [t.__dict__ for t in spec.tiers]})
    return price


@transaction.atomic
def price_cancel(*, price: Price, actor: User | None = None, api_key: ApiKey | None = None,
                 now: datetime | None = None) -> None:
    """Delete a price that has not started yet."""
    price = Price.objects.select_for_update().get(pk=price.pk)
    if price.valid_from <= _now(now):
        raise Conflict("This price is already in force and was charged; end it instead of deleting it.")
    _audit("price.cancelled", actor=actor, api_key=api_key, obj=price, changes={"price": str(price)})
    price.delete()
