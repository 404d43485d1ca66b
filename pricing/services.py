"""Every write to the price book: keyword-only, one transaction, one audit row.

The past is never rewritten: a price or contract that has taken effect may only be ended
(from now on), and a new one starts where it ends. Prices and contracts that have not
started yet may be changed or cancelled. `now` is a parameter so that demo data and tests
can load history; callers in the API and the console never pass it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar, overload

from django.db import IntegrityError, transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiKey, Organization, User
from core.errors import Conflict, DomainError
from core.money import CurrencyError, require_decimal, validate_currency
from pricing.models import (
    TIERED_MODELS,
    BillingModel,
    Contract,
    ContractPrice,
    OverrideKind,
    Price,
    PriceTier,
    PriceUnit,
    PricingModel,
    Product,
    ProductGroup,
    ProductKind,
    ResourceState,
)
from pricing.quantity_pricing import Tier, validate_tiers

_Dated = TypeVar("_Dated", Price, Contract)

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
PRODUCT_FIELDS = ("name", "description", "group", "kind", "billing_model", "unit_label", "vcpus", "ram_gb",
                  "gpu_model", "gpu_count", "local_disk_gb", "is_active", "position")


def _audit(action: str, *, actor: User | None, api_key: ApiKey | None, obj: Model,
           organization: Organization | None = None, changes: dict[str, Any] | None = None,
           reason: str = "") -> None:
    audit_record(action, actor=actor, api_key=api_key, organization=organization, obj=obj, changes=changes,
                 reason=reason)


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _whole_minute(value: datetime | None, field: str) -> None:
    if value is None:
        return
    if value.tzinfo is None:
        raise DomainError("Give the time with a timezone (UTC).", field=field)
    if value.second or value.microsecond:
        raise DomainError("Prices and contracts change on a whole minute (seconds must be 0).", field=field)


@overload
def _money(value: object, field: str, *, allow_none: Literal[False] = False) -> Decimal: ...
@overload
def _money(value: object, field: str, *, allow_none: bool) -> Decimal | None: ...
def _money(value: object, field: str, *, allow_none: bool = False) -> Decimal | None:
    if value is None:
        if allow_none:
            return None
        raise DomainError("This amount is required.", field=field)
    try:
        amount = require_decimal(value)
    except (TypeError, ValueError) as exc:
        raise DomainError(f"Not a decimal amount: {exc}.", field=field) from exc
    if amount < 0:
        raise DomainError("Amounts cannot be negative.", field=field)
    return amount


def _currency(code: str, field: str = "currency") -> str:
    try:
        return validate_currency(code)
    except CurrencyError:
        raise DomainError(f"{code!r} is not an ISO 4217 currency code (e.g. USD, EUR, JPY).", field=field) from None


def _period_text(start: datetime, end: datetime | None) -> str:
    return f"{start:%Y-%m-%d %H:%M} UTC – {end:%Y-%m-%d %H:%M} UTC" if end else f"{start:%Y-%m-%d %H:%M} UTC onwards"


def _overlapping(qs: QuerySet[_Dated], valid_from: datetime, valid_to: datetime | None) -> QuerySet[_Dated]:
    qs = qs.exclude(valid_to__isnull=False, valid_to__lte=valid_from)
    if valid_to is not None:
        qs = qs.filter(valid_from__lt=valid_to)
    return qs


# --- products ---------------------------------------------------------------

def product_check(product: Product) -> None:
    """The rules of a product's attributes, as DomainErrors. No writes."""
    if product.billing_model == BillingModel.ADDON and product.kind != ProductKind.ADDON:
        raise DomainError("Only add-on products use the add-on billing model.", field="billing_model")
    if product.kind == ProductKind.SERVER and not product.vcpus:
        raise DomainError("A server flavour needs its number of vCPUs.", field="vcpus")
    if product.gpu_count and not product.gpu_model:
        raise DomainError("Name the GPU model of a flavour with GPUs.", field="gpu_model")


@transaction.atomic
def product_create(*, code: str, name: str, group: ProductGroup, kind: str, billing_model: str,
                   actor: User | None = None, api_key: ApiKey | None = None, **attributes: Any) -> Product:
    unknown = set(attributes) - set(PRODUCT_FIELDS)
    if unknown:
        raise DomainError(f"Unknown product fields: {', '.join(sorted(unknown))}.")
    if Product.objects.filter(code=code).exists():
        raise DomainError(f"A product with code {code!r} already exists.", field="code")
    product = Product(code=code, name=name, group=group, kind=kind, billing_model=billing_model, **attributes)
    product_check(product)
    product.save()
    _audit("product.created", actor=actor, api_key=api_key, obj=product,
           changes={"code": code, "name": name, "kind": kind, "billing_model": billing_model, **attributes})
    return product


@transaction.atomic
def product_update(*, product: Product, actor: User | None = None, api_key: ApiKey | None = None,
                   **fields: Any) -> Product:
    """`code` never changes (the platform refers to it); the billing model only while unpriced."""
    unknown = set(fields) - set(PRODUCT_FIELDS)
    if unknown:
        raise DomainError(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    product = Product.objects.select_for_update().get(pk=product.pk)
    if "billing_model" in fields and fields["billing_model"] != product.billing_model and product.prices.exists():
        raise Conflict("The billing model of a priced product cannot change; create a new product.",
                       field="billing_model")
    changes = {k: [str(getattr(product, k)), str(v)] for k, v in fields.items() if getattr(product, k) != v}
    for key, value in fields.items():
        setattr(product, key, value)
    product_check(product)
    product.save()
    if changes:
        _audit("product.changed", actor=actor, api_key=api_key, obj=product, changes=changes)
    return product


# --- prices -----------------------------------------------------------------

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
    tiers = tuple(sorted(spec.tiers, key=lambda t: t.lower))
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
            f"It overlaps the {other.amount} {other.currency} price in force {_period_text(other.valid_from, other.valid_to)}. "
            f"End that price first, or start this one when it ends.", field="valid_from",
        )
    return PriceSpec(**{**spec.__dict__, "currency": currency, "unit": unit, "amount": amount, "tiers": tiers,
                        "included_quantity": included, "monthly_cap": cap})


def _write_tiers(price: Price, tiers: Sequence[Tier]) -> None:
    PriceTier.objects.bulk_create(
        PriceTier(price=price, lower=t.lower, upper=t.upper, unit_amount=t.unit_amount, flat_amount=t.flat_amount)
        for t in tiers
    )


def _save_checked(instance: Price | Contract) -> None:
    """Save; the database's own constraints (the exclusion constraint on PostgreSQL) are
    the last word against a concurrent writer."""
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:
        if "overlap" in str(exc):
            raise Conflict("Another price or contract for the same period was saved at the same moment.") from exc
        raise


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


# --- contracts --------------------------------------------------------------

@dataclass(frozen=True)
class OverrideSpec:
    product: Product
    kind: str
    state: str = ""
    amount: Decimal | None = None
    discount_percent: Decimal | None = None
    monthly_cap: Decimal | None = None


def _check_override(o: OverrideSpec, index: int, currency: str) -> OverrideSpec:
    where = f"Contract price {index} ({o.product.code})"
    if o.state and o.state not in ResourceState.values:
        raise DomainError(f"{where}: unknown state {o.state!r}.", field="prices")
    if o.kind == OverrideKind.ABSOLUTE:
        if o.discount_percent is not None:
            raise DomainError(f"{where}: an absolute price has no discount.", field="prices")
        amount = _money(o.amount, "prices")
        cap = _money(o.monthly_cap, "prices", allow_none=True)
        if cap is not None and cap < amount:
            raise DomainError(f"{where}: the monthly cap ({cap}) is below the hourly rate ({amount}).", field="prices")
        tiered = Price.objects.filter(product=o.product, currency=currency, pricing_model__in=TIERED_MODELS)
        if tiered.exists():
            raise DomainError(f"{where}: its list price is tiered; give a percentage discount instead.",
                              field="prices")
        return OverrideSpec(o.product, o.kind, o.state, amount, None, cap)
    if o.kind == OverrideKind.DISCOUNT:
        if o.amount is not None or o.monthly_cap is not None:
            raise DomainError(f"{where}: a discount takes only a percentage.", field="prices")
        pct = _money(o.discount_percent, "prices")
        if pct > 100:
            raise DomainError(f"{where}: a discount cannot exceed 100%.", field="prices")
        return OverrideSpec(o.product, o.kind, o.state, None, pct, None)
    raise DomainError(f"{where}: choose an absolute price or a percentage discount.", field="prices")


def contract_check(*, organization: Organization, valid_from: datetime, valid_to: datetime | None, note: str,
                   committed_monthly_minimum: Decimal, prices: Sequence[OverrideSpec], now: datetime | None = None,
                   replacing: Contract | None = None) -> list[OverrideSpec]:
    """Every rule a contract must meet, as DomainErrors. No writes."""
    now = _now(now)
    if not prices:
        raise DomainError("A contract needs at least one price override.", field="prices")
    if not note.strip():
        raise DomainError("Note what was agreed, with whom, and where the signed copy is.", field="note")
    _money(committed_monthly_minimum, "committed_monthly_minimum")
    _whole_minute(valid_from, "valid_from")
    _whole_minute(valid_to, "valid_to")
    if valid_to is not None and valid_to <= valid_from:
        raise DomainError("A contract must end after it starts.", field="valid_to")
    if valid_from < now.replace(second=0, microsecond=0):
        raise DomainError("A contract cannot start in the past: what was charged stays charged.", field="valid_from")
    seen: dict[int, set[str]] = {}
    checked = []
    for index, override in enumerate(prices, start=1):
        states = seen.setdefault(override.product.pk, set())
        if override.state in states or (override.state == "" and states) or ("" in states):
            raise DomainError(f"Contract price {index} ({override.product.code}): the product is listed twice for "
                              f"the same state.", field="prices")
        states.add(override.state)
        checked.append(_check_override(override, index, organization.currency))
    clashes = _overlapping(Contract.objects.filter(organization=organization), valid_from, valid_to)
    if replacing is not None:
        clashes = clashes.exclude(pk=replacing.pk)
    other = clashes.first()
    if other is not None:
        raise DomainError(f"It overlaps the contract {other.name!r} ({_period_text(other.valid_from, other.valid_to)}). "
                          f"End that contract first.", field="valid_from")
    return checked


@transaction.atomic
def contract_create(*, organization: Organization, name: str, valid_from: datetime, note: str,
                    prices: Sequence[OverrideSpec], valid_to: datetime | None = None,
                    committed_monthly_minimum: Decimal = Decimal("0"), actor: User | None = None,
                    api_key: ApiKey | None = None, now: datetime | None = None) -> Contract:
    Organization.objects.select_for_update().get(pk=organization.pk)  # serialises contracts per organisation
    checked = contract_check(organization=organization, valid_from=valid_from, valid_to=valid_to, note=note,
                             committed_monthly_minimum=committed_monthly_minimum, prices=prices, now=now)
    contract = Contract(organization=organization, name=name, currency=organization.currency, valid_from=valid_from,
                        valid_to=valid_to, committed_monthly_minimum=committed_monthly_minimum, note=note,
                        created_by=actor)
    _save_checked(contract)
    ContractPrice.objects.bulk_create(
        ContractPrice(contract=contract, product=o.product, state=o.state, kind=o.kind, amount=o.amount,
                      discount_percent=o.discount_percent, monthly_cap=o.monthly_cap)
        for o in checked
    )
    _audit("contract.created", actor=actor, api_key=api_key, obj=contract, organization=organization, changes={
        "name": name, "valid_from": valid_from, "valid_to": valid_to, "currency": contract.currency,
        "committed_monthly_minimum": committed_monthly_minimum, "note": note,
        "prices": [{"product": o.product.code, "state": o.state, "kind": o.kind, "amount": o.amount,
                    "discount_percent": o.discount_percent, "monthly_cap": o.monthly_cap} for o in checked],
    })
    return contract


def contract_end_check(*, contract: Contract, at: datetime, now: datetime | None = None) -> None:
    now = _now(now)
    _whole_minute(at, "valid_to")
    if at < now.replace(second=0, microsecond=0):
        raise DomainError("A contract cannot be ended in the past.", field="valid_to")
    if at <= contract.valid_from:
        raise DomainError("A contract must end after it starts; cancel one that has not started.", field="valid_to")
    if contract.valid_to is not None and contract.valid_to <= at:
        raise DomainError(f"This contract already ends at {contract.valid_to:%Y-%m-%d %H:%M} UTC; it can only "
                          f"end earlier.", field="valid_to")


@transaction.atomic
def contract_end(*, contract: Contract, at: datetime, actor: User | None = None, api_key: ApiKey | None = None,
                 now: datetime | None = None, reason: str = "") -> Contract:
    contract = Contract.objects.select_for_update().get(pk=contract.pk)
    contract_end_check(contract=contract, at=at, now=now)
    old = contract.valid_to
    contract.valid_to = at
    contract.save(update_fields=["valid_to"])
    _audit("contract.ended", actor=actor, api_key=api_key, obj=contract, organization=contract.organization,
           changes={"valid_to": [old, at]}, reason=reason)
    return contract


@transaction.atomic
def contract_cancel(*, contract: Contract, actor: User | None = None, api_key: ApiKey | None = None,
                    now: datetime | None = None) -> None:
    """Delete a contract that has not started yet."""
    contract = Contract.objects.select_for_update().get(pk=contract.pk)
    if contract.valid_from <= _now(now):
        raise Conflict("This contract is already in force; end it instead of deleting it.")
    _audit("contract.cancelled", actor=actor, api_key=api_key, obj=contract, organization=contract.organization,
           changes={"contract": str(contract)})
    contract.delete()
