"""Contracts: an organisation's negotiated prices (overrides) over a period.

A contract holds one override per product and state (an absolute price, or a percentage
discount off a list price; a tiered list price takes only a discount) and a committed
monthly minimum. An organisation's contracts never overlap; like prices, one in force is
only ended, one not yet started may be cancelled. Contract writes are serialised per
organisation by locking the organisation row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from accounts.models import ApiKey, Organization, User
from core.errors import Conflict, DomainError
from pricing.models import TIERED_MODELS, Contract, ContractPrice, OverrideKind, Price, Product, ResourceState
from pricing.services.common import (
    _audit,
    _money,
    _now,
    _overlapping,
    _period_text,
    _save_checked,
    _whole_minute,
)


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
