"""Reads of the price book that are more than a one-liner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from accounts.models import Organization
from pricing.models import BILLABLE_STATES, Contract, Product, ResourceState
from pricing.resolver import NoPrice, PriceIndex, ResolvedPrice

STATE_ORDER = [ResourceState.RUNNING, ResourceState.STOPPED, ResourceState.HIBERNATED]
assert set(STATE_ORDER) == BILLABLE_STATES


@dataclass(frozen=True)
class EffectivePrice:
    product: Product
    state: str
    price: ResolvedPrice


def effective_price_list(*, organization: Organization, at: datetime) -> list[EffectivePrice]:
    """Every active product's price for `organization` in each billable state at `at`,
    in catalogue order; products without a price in its currency are left out. Add-ons
    appear once per unit (hourly and monthly), as they bill like their parent."""
    index = PriceIndex.load(at=at, organization_ids=[organization.pk])
    rows = []
    products = Product.objects.filter(is_active=True).select_related("group")
    for product in products:
        parents = ("hourly", "monthly") if product.billing_model == "addon" else (None,)
        for state in STATE_ORDER:
            for parent in parents:
                try:
                    price = index.resolve(organization.pk, product.pk, state, parent_billing_model=parent)
                except NoPrice:  # not sold in this state or currency
                    continue
                rows.append(EffectivePrice(product, state, price))
    return rows


def contract_in_force(*, organization: Organization, at: datetime) -> Contract | None:
    return (Contract.objects.filter(organization=organization, valid_from__lte=at)
            .exclude(valid_to__lte=at).prefetch_related("prices__product").first())


@dataclass
class SheetRow:
    """One line of the portal's price sheet: a product (an add-on once per parent model)."""

    product: Product
    unit: str
    cells: dict[str, ResolvedPrice]  # state -> price
    parent_billing_model: str | None = None

    @property
    def by_state(self) -> list[ResolvedPrice | None]:
        return [self.cells.get(state) for state in STATE_ORDER]

    @property
    def first(self) -> ResolvedPrice:
        return next(p for p in self.by_state if p is not None)

    @property
    def has_contract_price(self) -> bool:
        return any(p.source == "contract" for p in self.cells.values())


def price_sheet(*, organization: Organization, at: datetime) -> list[tuple[object, list[SheetRow]]]:
    """`effective_price_list` grouped for people: [(group, rows)] in catalogue order."""
    rows: dict[tuple, SheetRow] = {}
    for entry in effective_price_list(organization=organization, at=at):
        key = (entry.product.pk, entry.price.unit)
        row = rows.get(key)
        if row is None:
            parent = None
            if entry.product.billing_model == "addon":
                parent = "monthly" if entry.price.unit == "month" else "hourly"
            row = rows[key] = SheetRow(entry.product, entry.price.unit, {}, parent)
        row.cells[entry.state] = entry.price
    groups: dict[int, tuple[object, list[SheetRow]]] = {}
    for row in rows.values():
        groups.setdefault(row.product.group_id, (row.product.group, []))[1].append(row)
    return list(groups.values())
