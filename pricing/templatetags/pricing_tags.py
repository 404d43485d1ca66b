from decimal import Decimal

from django import template

from core.money import format_rate

register = template.Library()

UNIT_LABELS = {"hour": "/ hour", "month": "/ month", "gb_month": "/ GB-month", "gb": "/ GB", "unit": "/ unit"}


@register.filter
def rate(amount, currency):
    """'$0.0298': a rate is shown with every place it has (never rounded to cents)."""
    if amount is None or amount == "":
        return "—"
    return format_rate(Decimal(amount), currency)


@register.filter
def per_unit(unit):
    return UNIT_LABELS.get(unit, f"/ {unit}")
