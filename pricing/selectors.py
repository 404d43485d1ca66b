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
