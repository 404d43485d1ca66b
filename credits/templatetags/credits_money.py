from decimal import Decimal

from django import template

from core.money import format_money

register = template.Library()


@register.filter
def money(amount, currency):
    """'$1,234.50' — rounded for display only."""
    if amount is None or amount == "":
        return "—"
    return format_money(Decimal(amount), currency)
