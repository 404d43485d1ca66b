"""How documents (invoices, statements, receipts, their emails and portal pages) write
quantities, units and lines. Money and rates are the template engine's builtin `money` and
`rate` (core/templatetags/formats.py), the same on every page and document."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import template

from core.money import ZERO, format_money, format_rate, round_money

register = template.Library()

# Unit codes of prices, usage and metrics in words: (one, many).
UNIT_WORDS: dict[str, tuple[str, str]] = {
    "hour": ("hour", "hours"),
    "month": ("month", "months"),
    "gb_month": ("GB-month", "GB-months"),
    "gb": ("GB", "GB"),
    "unit": ("unit", "units"),
    "minute": ("minute", "minutes"),
    "request": ("request", "requests"),
}
# A quantity is shown with at least this many places (when it has them), and with more
# only where fewer would not multiply back to the line's amount.
QUANTITY_MIN_PLACES = 3
QUANTITY_MAX_PLACES = 12


def unit_word(unit: str, quantity: Decimal | None = None) -> str:
    one, many = UNIT_WORDS.get(unit.lower(), (unit, unit))
    return one if quantity is not None and quantity == 1 else many


@register.filter
def unit_words(unit: str, quantity: Decimal | None = None) -> str:
    return unit_word(unit or "", quantity)


def _text(q: Decimal) -> str:
    q = q.normalize()
    if q == q.to_integral_value():
        q = q.quantize(Decimal(1))
    return f"{q:,f}"


def shown_quantity(quantity: Decimal, unit_price: Decimal, amount: Decimal, currency: str) -> Decimal:
    """The quantity as a reader sees it: three places (89.483 hours), more only where three
    would not give back the line's amount when multiplied by the unit price and rounded
    half-up once, as the line itself was."""
    for places in range(QUANTITY_MIN_PLACES, QUANTITY_MAX_PLACES + 1):
        shown = quantity.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        if not unit_price or round_money(shown * unit_price, currency) == amount:
            return shown
    return quantity


@register.simple_tag
def line_figures(line: Any, currency: str) -> dict[str, str]:
    """quantity ('89.483 hours'), unit price ('$0.0298 / hour') and amount ('$2.67') of a
    line, such that quantity × unit price, rounded once, is the amount. Lines without a
    quantity (discounts, adjustments) show only their amount."""
    quantity, unit_price, amount = line.quantity, line.unit_price, line.amount
    figures = {"quantity": "", "unit_price": "", "amount": format_money(amount, currency)}
    if quantity is None or quantity == ZERO:
        return figures
    shown = shown_quantity(quantity, unit_price, amount, currency)
    figures["quantity"] = f"{_text(shown)} {unit_word(line.unit, shown)}".strip() if line.unit else _text(shown)
    if unit_price:
        per = f" / {unit_word(line.unit, Decimal(1))}" if line.unit else ""
        figures["unit_price"] = f"{format_rate(unit_price, currency)}{per}"
    return figures


@register.filter
def qty(value: Decimal | None) -> str:
    """Quantities for people: at most three decimals, no trailing zeros."""
    if value is None:
        return ""
    return _text(value.quantize(Decimal("0.001")))


@register.filter
def percent(value: Decimal | None) -> str:
    return "" if value is None else f"{value.normalize():f}%"
