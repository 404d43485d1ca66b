"""The one way templates write money and time (core/formatting.py). A builtin of the
template engine (settings TEMPLATES), so every template, the console's included, has them
without a `{% load %}`:

    {{ invoice.total|money:invoice.currency }}     $3,089.65
    {{ price.amount|rate:price.currency }}         $0.0298      (a rate: every place it has)
    {{ payment.created_at|when }}                  2026-12-03 14:05 UTC  (the reader's zone)
    {{ invoice.due_at|when:"date" }}               2026-12-03
    {{ invoice.period_start|when:"month" }}        December 2026
    {{ line.measured_minutes|minutes }}            35 h 30 min
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import template
from django.utils import timezone

from core.formatting import MISSING, Style, format_amount, format_minutes, format_rate, format_when
from core.money import round_money

register = template.Library()


@register.filter
def money(amount: Decimal | None, currency: str) -> str:
    return format_amount(amount, currency)


@register.filter
def rate(amount: Decimal | None, currency: str) -> str:
    return MISSING if amount is None or amount == "" else format_rate(Decimal(amount), currency)


@register.filter
def when(value: dt.datetime | dt.date | None, style: Style = "datetime") -> str:
    return format_when(value, style)


@register.filter
def minutes(value: int | None) -> str:
    return format_minutes(value)


@register.filter
def input_amount(amount: Decimal | None, currency: str) -> str:
    """An amount as a form field's value ('1234.50'): rounded to the currency's minor unit,
    no symbol, no grouping. Never for reading (that is `money`)."""
    return "" if amount is None or amount == "" else str(round_money(Decimal(amount), currency))


@register.simple_tag
def now_when() -> str:
    """The current time as `when` writes it, in the reader's zone."""
    return format_when(timezone.now())
