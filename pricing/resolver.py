"""What does organisation O pay for product P in state S at time T?

- `resolve_price(...)`: one answer, a few indexed queries.
- `PriceIndex.load(at=...)` + `index.resolve_many(triples)`: many answers from an index
  built by four queries (prices, tiers, contracts, organisations); 100,000 triples in a
  fraction of a second (`python manage.py benchmark pricing`).
- `pricing.sql`: the same answers as SQL that metering joins.

Both Python paths share `_combine`, so the rules live once:
1. a transitional or error state with no explicit price costs nothing (`source="free"`);
2. otherwise the list price in force at `at` in the organisation's currency;
3. a contract valid at `at` with an override for the product (this state beats "all
   states") replaces the rate (absolute) or takes a percentage off every amount (discount);
4. no list price and nothing free → `NoPrice`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar, overload

from django.db.models import F, Model, QuerySet

from core.errors import NotFound
from core.money import ZERO
from pricing.models import (
    FREE_BY_DEFAULT_STATES,
    BillingModel,
    Contract,
    ContractPrice,
    OverrideKind,
    Price,
    PriceTier,
    PriceUnit,
    Product,
)
from pricing.quantity_pricing import PricedQuantity, PriceTerms, Tier, price_quantity

if TYPE_CHECKING:
    from accounts.models import Organization

_M = TypeVar("_M", bound=Model)

LIST = "list"
CONTRACT = "contract"
FREE = "free"
HUNDRED = Decimal(100)
# Organisation ids per query when loading an index: one query's IN list stays a few hundred KB.
ORG_BATCH = 10_000

# Add-ons are billed like their parent: an hourly parent takes the add-on's hourly price,
# a monthly parent its monthly price.
ADDON_UNIT_FOR_PARENT: dict[str, str] = {BillingModel.HOURLY: PriceUnit.HOUR, BillingModel.MONTHLY: PriceUnit.MONTH}


class NoPrice(NotFound):
    code = "no_price"


@dataclass(frozen=True)
class ResolvedPrice:
    amount: Decimal
    currency: str
    unit: str
    billing_model: str
    pricing_model: str
    source: str  # "list" | "contract" | "free"
    price_id: int | None
    contract_id: int | None
    product_id: int
    state: str
    tiers: tuple[Tier, ...] = ()
    package_size: Decimal | None = None
    included_quantity: Decimal = ZERO
    monthly_cap: Decimal | None = None
    min_billable_minutes: int = 0
    contract_price_id: int | None = None
    list_amount: Decimal | None = None
    # The answer holds over [valid_from, valid_to): the list price's and contract's periods intersected.
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    @property
    def terms(self) -> PriceTerms:
        return PriceTerms(self.pricing_model, self.amount, self.tiers, self.package_size)

    def price(self, quantity: Decimal) -> PricedQuantity:
        return price_quantity(self.terms, quantity)


@dataclass(frozen=True)
class _ListPrice:
    id: int
    product_id: int
    currency: str
    state: str
    unit: str
    pricing_model: str
    amount: Decimal
    package_size: Decimal | None
    included_quantity: Decimal
    monthly_cap: Decimal | None
    min_billable_minutes: int
    valid_from: datetime
    valid_to: datetime | None
    tiers: tuple[Tier, ...]


@dataclass(frozen=True)
class _Override:
    id: int
    contract_id: int
    kind: str
    amount: Decimal | None
    discount_percent: Decimal | None
    monthly_cap: Decimal | None
    valid_from: datetime
    valid_to: datetime | None


PRICE_FIELDS = ("id", "product_id", "currency", "state", "unit", "pricing_model", "amount", "package_size",
                "included_quantity", "monthly_cap", "min_billable_minutes", "valid_from", "valid_to")


def _in_force(qs: QuerySet[_M], at: datetime) -> QuerySet[_M]:
    return qs.filter(valid_from__lte=at).exclude(valid_to__lte=at)


def _load_list_prices(qs: QuerySet[Price]) -> list[_ListPrice]:
    rows = list(qs.values(*PRICE_FIELDS))
    tiers: dict[int, list[Tier]] = {}
    if any(r["pricing_model"] in ("graduated", "volume") for r in rows):
        ids = [r["id"] for r in rows if r["pricing_model"] in ("graduated", "volume")]
        for t in PriceTier.objects.filter(price_id__in=ids).order_by(
            "price_id", F("up_to").asc(nulls_last=True)).values_list("price_id", "up_to", "unit_amount", "flat_amount"
        ):
            tiers.setdefault(t[0], []).append(Tier(*t[1:]))
    return [_ListPrice(**r, tiers=tuple(tiers.get(r["id"], ()))) for r in rows]


def _override_from(cp: ContractPrice, contract: Contract) -> _Override:
    return _Override(cp.id, contract.id, cp.kind, cp.amount, cp.discount_percent, cp.monthly_cap,
                     contract.valid_from, contract.valid_to)


@overload
def _discounted(value: Decimal, percent: Decimal) -> Decimal: ...
@overload
def _discounted(value: None, percent: Decimal) -> None: ...
@overload
def _discounted(value: Decimal | None, percent: Decimal) -> Decimal | None: ...
def _discounted(value: Decimal | None, percent: Decimal) -> Decimal | None:
    return None if value is None else value * (HUNDRED - percent) / HUNDRED


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return a if b is None else b if a is None else max(a, b)


def _earlier_end(a: datetime | None, b: datetime | None) -> datetime | None:
    return a if b is None else b if a is None else min(a, b)


def _combine(product_id: int, state: str, billing_model: str, lp: _ListPrice | None, ov: _Override | None,
             currency: str) -> ResolvedPrice:
    if lp is None:
        if state in FREE_BY_DEFAULT_STATES:
            return ResolvedPrice(ZERO, currency, PriceUnit.HOUR, billing_model, "flat", FREE, None, None,
                                 product_id, state)
        raise NoPrice(f"No {currency} price for product {product_id} in state {state!r} at this time.",
                      field="product")
    listed = ResolvedPrice(
        amount=lp.amount, currency=lp.currency, unit=lp.unit, billing_model=billing_model,
        pricing_model=lp.pricing_model, source=LIST, price_id=lp.id, contract_id=None, product_id=product_id,
        state=state, tiers=lp.tiers, package_size=lp.package_size, included_quantity=lp.included_quantity,
        monthly_cap=lp.monthly_cap, min_billable_minutes=lp.min_billable_minutes, list_amount=lp.amount,
        valid_from=lp.valid_from, valid_to=lp.valid_to,
    )
    if ov is None:
        return listed
    contracted = replace(
        listed, source=CONTRACT, contract_id=ov.contract_id, contract_price_id=ov.id,
        valid_from=_later(lp.valid_from, ov.valid_from), valid_to=_earlier_end(lp.valid_to, ov.valid_to),
    )
    # The contract_price_kind_fields constraint: an absolute override has an amount, a
    # discount a percentage.
    if ov.kind == OverrideKind.ABSOLUTE and ov.amount is not None:
        cap = ov.monthly_cap if ov.monthly_cap is not None else lp.monthly_cap
        return replace(contracted, amount=ov.amount, monthly_cap=cap)
    pct = ov.discount_percent
    if ov.kind != OverrideKind.DISCOUNT or pct is None:
        raise ValueError(f"Contract price {ov.id}: a {ov.kind!r} override without its amount or percentage.")
    tiers = tuple(
        Tier(t.up_to, _discounted(t.unit_amount, pct), _discounted(t.flat_amount, pct)) for t in lp.tiers
    )
    return replace(contracted, amount=_discounted(lp.amount, pct), tiers=tiers,
                   monthly_cap=_discounted(lp.monthly_cap, pct))


def _pick_unit(candidates: list[_ListPrice], billing_model: str, parent_billing_model: str | None) -> _ListPrice | None:
    if not candidates:
        return None
    if billing_model == BillingModel.ADDON:
        wanted = ADDON_UNIT_FOR_PARENT.get(parent_billing_model or BillingModel.HOURLY, PriceUnit.HOUR)
        for lp in candidates:
            if lp.unit == wanted:
                return lp
        return None
    return candidates[0]


def _pick_override(by_state: dict[str, _Override], state: str) -> _Override | None:
    return by_state.get(state) or by_state.get("")


def resolve_price(
    *, organization: Organization | None, product: Product | int, state: str, at: datetime, currency: str | None = None,
    parent_billing_model: str | None = None,
) -> ResolvedPrice:
    """The rate organisation `organization` (None = list price only) pays for `product` in
    `state` at the instant `at`. Currency is the organisation's unless given."""
    if at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    if not isinstance(product, Product):
        product = Product.objects.get(pk=product)
    currency = currency or (organization.currency if organization is not None else None)
    if currency is None:
        raise ValueError("Give an organisation or a currency.")
    candidates = _load_list_prices(
        _in_force(Price.objects.filter(product=product, currency=currency, state=state), at).order_by("unit")
    )
    lp = _pick_unit(candidates, product.billing_model, parent_billing_model)
    ov = None
    if organization is not None and lp is not None:
        contract = _in_force(Contract.objects.filter(organization=organization, currency=currency), at).first()
        if contract is not None:
            by_state = {cp.state: _override_from(cp, contract)
                        for cp in contract.prices.filter(product=product, state__in=[state, ""])}
            ov = _pick_override(by_state, state)
    return _combine(product.pk, state, product.billing_model, lp, ov, currency)


# One contract's overrides: {(product_id, state): override}; state "" is "all states".
_Overrides = dict[tuple[int, str], _Override]
# (contract id or currency, currency, product_id, state, parent billing model)
_CacheKey = tuple[int | str | None, str | None, int, str, str | None]


class PriceIndex:
    """The whole price book in force at one instant, in memory, for bulk resolution.

    Built by four queries whatever the number of lookups; build one per metering pass
    (per minute), not per lookup."""

    def __init__(self, at: datetime, list_prices: Iterable[_ListPrice], overrides: dict[int, _Overrides],
                 billing_models: dict[int, str], org_currency: dict[int, str],
                 org_contract: dict[int, tuple[int, str]]) -> None:
        self.at = at
        self._list: dict[tuple[int, str, str], list[_ListPrice]] = {}
        for lp in sorted(list_prices, key=lambda p: p.unit):
            self._list.setdefault((lp.product_id, lp.currency, lp.state), []).append(lp)
        self._overrides = overrides  # contract_id -> {(product_id, state): _Override}
        self._billing_models = billing_models
        self._org_currency = org_currency
        self._org_contract = org_contract  # org id -> (contract id, currency)
        self._cache: dict[_CacheKey, ResolvedPrice | NoPrice] = {}

    @classmethod
    def load(cls, *, at: datetime, organization_ids: Iterable[int] | None = None) -> PriceIndex:
        from accounts.models import Organization

        if at.tzinfo is None:
            raise ValueError("`at` must be timezone-aware")
        list_prices = _load_list_prices(_in_force(Price.objects.all(), at))
        contracts = {c.id: c for c in _in_force(Contract.objects.all(), at)}
        overrides: dict[int, _Overrides] = {}
        for cp in ContractPrice.objects.filter(contract_id__in=list(contracts)):
            contract = contracts[cp.contract_id]
            overrides.setdefault(cp.contract_id, {})[(cp.product_id, cp.state)] = _override_from(cp, contract)
        org_currency: dict[int, str] = {}
        if organization_ids is None:
            org_currency = dict(Organization.objects.values_list("id", "currency"))
        else:
            ids = sorted(set(organization_ids))
            for start in range(0, len(ids), ORG_BATCH):
                org_currency.update(
                    Organization.objects.filter(pk__in=ids[start:start + ORG_BATCH]).values_list("id", "currency")
                )
        org_contract = {c.organization_id: (c.id, c.currency) for c in contracts.values()}
        billing_models = dict(Product.objects.values_list("id", "billing_model"))
        return cls(at, list_prices, overrides, billing_models, org_currency, org_contract)

    def resolve(self, organization_id: int | None, product_id: int, state: str, *, currency: str | None = None,
                parent_billing_model: str | None = None) -> ResolvedPrice:
        if currency is None:
            currency = self._org_currency.get(organization_id) if organization_id is not None else None
            if currency is None:
                raise NotFound(f"No organisation {organization_id}.", field="organization")
        contract = self._org_contract.get(organization_id) if organization_id is not None else None
        contract_id = contract[0] if contract is not None and contract[1] == currency else None
        key = (contract_id or currency, currency, product_id, state, parent_billing_model)
        hit = self._cache.get(key)
        if hit is None:
            try:
                hit = self._compute(contract_id, currency, product_id, state, parent_billing_model)
            except NoPrice as exc:
                hit = exc
            self._cache[key] = hit
        if isinstance(hit, NoPrice):
            raise hit
        return hit

    def _compute(self, contract_id: int | None, currency: str, product_id: int, state: str,
                 parent_billing_model: str | None) -> ResolvedPrice:
        billing_model = self._billing_models.get(product_id)
        if billing_model is None:
            raise NotFound(f"No product {product_id}.", field="product")
        lp = _pick_unit(self._list.get((product_id, currency, state), []), billing_model, parent_billing_model)
        ov = None
        if contract_id is not None and lp is not None:
            table = self._overrides.get(contract_id, {})
            ov = table.get((product_id, state)) or table.get((product_id, ""))
        return _combine(product_id, state, billing_model, lp, ov, currency)

    def resolve_many(self, triples: Iterable[tuple[int, int, str]]) -> list[ResolvedPrice | None]:
        """(organization_id, product_id, state) → answers in the same order; None where there is no price."""
        out: list[ResolvedPrice | None] = []
        append = out.append
        cache = self._cache
        for org_id, product_id, state in triples:
            currency = self._org_currency.get(org_id)
            contract = self._org_contract.get(org_id)
            contract_id = contract[0] if contract is not None and contract[1] == currency else None
            hit = cache.get((contract_id or currency, currency, product_id, state, None))
            if hit is None:
                try:
                    hit = self.resolve(org_id, product_id, state)
                except NotFound:
                    hit = cache.get((contract_id or currency, currency, product_id, state, None))
            append(hit if isinstance(hit, ResolvedPrice) else None)
        return out


def resolve_many(triples: list[tuple[int, int, str]], *, at: datetime) -> list[ResolvedPrice | None]:
    """Bulk form of `resolve_price` for (organization_id, product_id, state) triples at one instant."""
    index = PriceIndex.load(at=at, organization_ids={t[0] for t in triples})
    return index.resolve_many(triples)
