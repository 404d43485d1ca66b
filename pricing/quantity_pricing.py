"""The one pure function that prices a quantity: flat, per unit, graduated, volume, package.

No database, no rounding: amounts come back exact (rounding happens once, at invoice-line
level, through `core.money.round_money`). Quantities and amounts are Decimals; a float
raises `TypeError`.

Tiers are written as Stripe and Lago write them: each has an inclusive `up_to` (None on the
last: no bound), and starts just above the `up_to` of the tier before it (the first at 0).
A quantity q is in tier k when up_to[k-1] < q <= up_to[k]: 10,000 units under a first tier
"up to 10,000" are in that tier; 10,000.5 are in the next one.

Worked example, tiers up to 100 at 0.10 + 5.00 flat, then above 100 at 0.08 + 2.00 flat:
- graduated, 150 units: 100 × 0.10 + 5.00 + 50 × 0.08 + 2.00 = 21.00 (each band at its own rate);
- volume,    150 units: 150 × 0.08 + 2.00 = 14.00 (every unit at the rate of the band the total is in);
- volume,    100 units: 100 × 0.10 + 5.00 = 15.00 (100 is in "up to 100").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

from core.errors import DomainError
from core.money import ZERO, require_decimal

FLAT = "flat"
PER_UNIT = "per_unit"
GRADUATED = "graduated"
VOLUME = "volume"
PACKAGE = "package"
PRICING_MODELS = (FLAT, PER_UNIT, GRADUATED, VOLUME, PACKAGE)


@dataclass(frozen=True)
class Tier:
    """Quantities above the previous tier's `up_to` (0 for the first) up to and including
    `up_to` (None = unbounded)."""

    up_to: Decimal | None
    unit_amount: Decimal = ZERO
    flat_amount: Decimal = ZERO


def tier_order(tier: Tier) -> tuple[bool, Decimal]:
    """Sort key: by `up_to`, the unbounded tier last."""
    return (tier.up_to is None, tier.up_to if tier.up_to is not None else ZERO)


@dataclass(frozen=True)
class BreakdownLine:
    """One step of the calculation, for people: `quantity × unit_amount + flat_amount = amount`."""

    description: str
    quantity: Decimal
    unit_amount: Decimal
    flat_amount: Decimal
    amount: Decimal
    above: Decimal | None = None  # the tier holds quantities above this (exclusive; None: from 0)
    up_to: Decimal | None = None  # … up to and including this (None: no bound)


@dataclass(frozen=True)
class PricedQuantity:
    amount: Decimal
    breakdown: tuple[BreakdownLine, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class PriceTerms:
    """What `price_quantity` needs of a price (a `ResolvedPrice` or `Price` adapts to it)."""

    pricing_model: str
    amount: Decimal = ZERO
    tiers: tuple[Tier, ...] = ()
    package_size: Decimal | None = None


def validate_tiers(tiers: Sequence[Tier]) -> None:
    """Each tier's `up_to` is above the one before it, and only the last is unbounded, so
    every quantity from 0 has exactly one tier. Raises DomainError with a message a person
    can act on."""
    if not tiers:
        raise DomainError("A tiered price needs at least one tier.", field="tiers")
    previous: Decimal | None = None
    for index, tier in enumerate(tiers, start=1):
        for name in ("unit_amount", "flat_amount"):
            if require_decimal(getattr(tier, name)) < 0:
                raise DomainError(f"Tier {index}: {name.replace('_', ' ')} cannot be negative.", field="tiers")
        if tier.up_to is None:
            if index != len(tiers):
                raise DomainError(f"Tier {index} has no upper bound but is not the last; only the last tier may "
                                  f"be unbounded.", field="tiers")
            continue
        up_to = require_decimal(tier.up_to)
        if up_to < 0:
            raise DomainError(f"Tier {index}: up to {up_to} cannot be negative.", field="tiers")
        if previous is not None and up_to <= previous:
            raise DomainError(f"Tier {index} goes up to {up_to}, but the tier before it already goes up to "
                              f"{previous}: each tier must go higher than the one before it.", field="tiers")
        previous = up_to
    if tiers[-1].up_to is not None:
        raise DomainError(f"The last tier goes up to {tiers[-1].up_to}; leave its up to empty so every quantity "
                          f"has a price.", field="tiers")


def price_quantity(terms: PriceTerms, quantity: Decimal) -> PricedQuantity:
    """Price `quantity` units under `terms`. Exact: no rounding."""
    quantity = require_decimal(quantity)
    if quantity < 0:
        raise DomainError("Quantity cannot be negative.", field="quantity")
    model = terms.pricing_model
    amount = require_decimal(terms.amount)
    if model == FLAT:
        line = BreakdownLine("Flat", quantity, ZERO, amount, amount)
        return PricedQuantity(amount, (line,))
    if model == PER_UNIT:
        total = quantity * amount
        return PricedQuantity(total, (BreakdownLine("Per unit", quantity, amount, ZERO, total),))
    if model == PACKAGE:
        size = terms.package_size
        if size is None or require_decimal(size) <= 0:
            raise DomainError("Package pricing needs a package size above 0.", field="package_size")
        packages = (quantity / size).to_integral_value(rounding=ROUND_CEILING)
        total = packages * amount
        line = BreakdownLine(f"{packages} package(s) of {size}", packages, amount, ZERO, total)
        return PricedQuantity(total, (line,))
    if model in (GRADUATED, VOLUME):
        tiers = tuple(sorted(terms.tiers, key=tier_order))
        validate_tiers(tiers)
        return _graduated(tiers, quantity) if model == GRADUATED else _volume(tiers, quantity)
    raise DomainError(f"Unknown pricing model {model!r}.", field="pricing_model")


def _plain(value: Decimal) -> str:
    """10000.000000 → '10000', 9999.999999 → '9999.999999': every digit a bound has, no padding."""
    return f"{value.normalize():f}"


def _tier_label(above: Decimal | None, up_to: Decimal | None) -> str:
    if above is None:
        return f"Up to {_plain(up_to)}" if up_to is not None else "Any quantity"
    return f"Above {_plain(above)} up to {_plain(up_to)}" if up_to is not None else f"Above {_plain(above)}"


def _bands(tiers: tuple[Tier, ...]) -> list[tuple[Decimal | None, Tier]]:
    """Each tier with the bound it starts above (None for the first: it holds 0 too)."""
    return [(tiers[i - 1].up_to if i else None, tier) for i, tier in enumerate(tiers)]


def _graduated(tiers: tuple[Tier, ...], quantity: Decimal) -> PricedQuantity:
    """Each band's units at that band's rate; a band's flat fee applies once any unit falls in it
    (the quantity is above the band's start). The first band always applies, so its flat fee is
    a minimum charge. Units in a band are measured, `min(q, up_to) - above`: quantity 10,000
    under "up to 10,000" puts all 10,000 in the first band and nothing in the next."""
    lines = []
    total = ZERO
    for above, tier in _bands(tiers):
        if above is not None and quantity <= above:
            break
        top = quantity if tier.up_to is None else min(quantity, tier.up_to)
        units = top - (above or ZERO)
        amount = units * tier.unit_amount + tier.flat_amount
        lines.append(BreakdownLine(_tier_label(above, tier.up_to), units, tier.unit_amount, tier.flat_amount, amount,
                                   above, tier.up_to))
        total += amount
    return PricedQuantity(total, tuple(lines))


def _volume(tiers: tuple[Tier, ...], quantity: Decimal) -> PricedQuantity:
    """Every unit at the rate of the band the whole quantity falls in (the first whose
    `up_to` is at or above it), plus that band's flat fee."""
    above, tier = next((a, t) for a, t in _bands(tiers) if t.up_to is None or quantity <= t.up_to)
    amount = quantity * tier.unit_amount + tier.flat_amount
    line = BreakdownLine(_tier_label(above, tier.up_to), quantity, tier.unit_amount, tier.flat_amount, amount,
                         above, tier.up_to)
    return PricedQuantity(amount, (line,))
