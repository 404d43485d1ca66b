"""The one pure function that prices a quantity: flat, per unit, graduated, volume, package.

No database, no rounding: amounts come back exact (rounding happens once, at invoice-line
level, through `core.money.round_money`). Quantities and amounts are Decimals; a float
raises `TypeError`.

Worked example, tiers [0, 100) at 0.10 + 5.00 flat, [100, ∞) at 0.08 + 2.00 flat, 150 units:
- graduated: 100 × 0.10 + 5.00 + 50 × 0.08 + 2.00 = 21.00 (each band at its own rate);
- volume:    150 × 0.08 + 2.00 = 14.00 (every unit at the rate of the band the total is in).
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
    """Quantities in `[lower, upper)` (upper None = unbounded)."""

    lower: Decimal
    upper: Decimal | None
    unit_amount: Decimal = ZERO
    flat_amount: Decimal = ZERO


@dataclass(frozen=True)
class BreakdownLine:
    """One step of the calculation, for people: `quantity × unit_amount + flat_amount = amount`."""

    description: str
    quantity: Decimal
    unit_amount: Decimal
    flat_amount: Decimal
    amount: Decimal
    lower: Decimal | None = None
    upper: Decimal | None = None


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
    """Bands must start at 0, touch each other exactly, and only the last may be unbounded.

    Raises DomainError with a message a person can act on."""
    if not tiers:
        raise DomainError("A tiered price needs at least one tier.", field="tiers")
    ordered = sorted(tiers, key=lambda t: t.lower)
    expected: Decimal | None = ZERO  # where the next tier must start; None after an unbounded one
    for index, tier in enumerate(ordered, start=1):
        for name in ("lower", "unit_amount", "flat_amount"):
            value = require_decimal(getattr(tier, name))
            if value < 0:
                raise DomainError(f"Tier {index}: {name.replace('_', ' ')} cannot be negative.", field="tiers")
        if tier.lower != expected:
            if expected is None:
                raise DomainError(
                    f"Tier {index} starts at {tier.lower}, after an unbounded tier; the unbounded tier must be last.",
                    field="tiers",
                )
            problem = "leaves a gap" if tier.lower > expected else "overlaps the tier before it"
            raise DomainError(
                f"Tier {index} starts at {tier.lower} but the tier before it ends at {expected}: it {problem}. "
                f"Tiers must follow each other without gaps from 0.",
                field="tiers",
            )
        if tier.upper is not None and require_decimal(tier.upper) <= tier.lower:
            raise DomainError(f"Tier {index}: its upper bound {tier.upper} must be above its lower bound {tier.lower}.",
                              field="tiers")
        expected = tier.upper
    if expected is not None:
        raise DomainError(f"The last tier ends at {expected}; leave its upper bound empty so every quantity has a price.",
                          field="tiers")


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
        tiers = tuple(sorted(terms.tiers, key=lambda t: t.lower))
        validate_tiers(tiers)
        return _graduated(tiers, quantity) if model == GRADUATED else _volume(tiers, quantity)
    raise DomainError(f"Unknown pricing model {model!r}.", field="pricing_model")


def _tier_label(tier: Tier) -> str:
    return f"{tier.lower} – {tier.upper}" if tier.upper is not None else f"{tier.lower} and above"


def _graduated(tiers: tuple[Tier, ...], quantity: Decimal) -> PricedQuantity:
    """Each band's units at that band's rate; a band's flat fee applies once any unit falls in it.
    Zero units touch the first band only, so its flat fee is a minimum charge."""
    lines = []
    total = ZERO
    for tier in tiers:
        if quantity <= tier.lower and not (quantity == 0 and tier.lower == 0):
            break
        top = quantity if tier.upper is None else min(quantity, tier.upper)
        units = top - tier.lower
        amount = units * tier.unit_amount + tier.flat_amount
        lines.append(BreakdownLine(_tier_label(tier), units, tier.unit_amount, tier.flat_amount, amount,
                                   tier.lower, tier.upper))
        total += amount
    return PricedQuantity(total, tuple(lines))


def _volume(tiers: tuple[Tier, ...], quantity: Decimal) -> PricedQuantity:
    """Every unit at the rate of the band the whole quantity falls in, plus that band's flat fee."""
    tier = next(t for t in tiers if t.upper is None or quantity < t.upper)
    amount = quantity * tier.unit_amount + tier.flat_amount
    line = BreakdownLine(_tier_label(tier), quantity, tier.unit_amount, tier.flat_amount, amount, tier.lower, tier.upper)
    return PricedQuantity(amount, (line,))
