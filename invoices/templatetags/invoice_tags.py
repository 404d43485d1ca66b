from decimal import Decimal

from django import template

from core.money import format_money

register = template.Library()


@register.filter
def money(amount: Decimal | None, currency: str) -> str:
    return "" if amount is None else format_money(amount, currency)


@register.filter
def qty(value: Decimal | None) -> str:
    """Quantities for people: at most three decimals, no trailing zeros."""
    if value is None:
        return ""
    q = value.quantize(Decimal("0.001")).normalize()
    return f"{q:,f}"


@register.filter
def percent(value: Decimal | None) -> str:
    return "" if value is None else f"{value.normalize():f}%"
