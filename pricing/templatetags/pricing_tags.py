from decimal import Decimal

from django import template

register = template.Library()

UNIT_LABELS = {"hour": "/ hour", "month": "/ month", "gb_month": "/ GB-month", "gb": "/ GB", "unit": "/ unit"}


@register.filter
def per_unit(unit):
    return UNIT_LABELS.get(unit, f"/ {unit}")


def format_quantity(value: Decimal) -> str:
    """'10,000', '9,999.999999': every decimal a quantity has, none it has not (a tier bound
    is never rounded for display: 9,999.999999 is not 10,000)."""
    text = f"{Decimal(value):,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@register.filter
def quantity(value):
    return "—" if value is None or value == "" else format_quantity(value)


@register.filter
def tier_bands(tiers):
    """Tiers as people read them, inclusive like Stripe's: ("up to 10,240", tier),
    ("above 10,240 up to 51,200", tier), ("above 51,200", tier)."""
    bands, above = [], None
    for tier in tiers:
        if above is None:
            label = f"up to {format_quantity(tier.up_to)}" if tier.up_to is not None else "any quantity"
        elif tier.up_to is None:
            label = f"above {format_quantity(above)}"
        else:
            label = f"above {format_quantity(above)} up to {format_quantity(tier.up_to)}"
        bands.append((label, tier))
        above = tier.up_to
    return bands
