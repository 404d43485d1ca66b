"""Money: one representation, one precision, one rounding rule.

Invariants:
- Amounts are `decimal.Decimal`, never float. A float reaching any function here is a bug
  and raises `TypeError`.
- Stored amounts use `AMOUNT_MAX_DIGITS`/`AMOUNT_DECIMAL_PLACES` (see `money_field`).
  Twelve places keep per-minute charges exact enough: $2.06/hour is $0.034333333333/minute,
  and a month of such minutes drifts by less than a millionth of a cent.
- Rounding happens once, at invoice-line level, through `round_money`: half-up to the
  currency's ISO 4217 minor unit (JPY 0, USD 2, BHD 3). Totals are sums of rounded lines.
- Minor units (cents) exist only at the payment-provider boundary: `to_minor_units` /
  `from_minor_units` (ISO's); payments converts through each provider's own table
  (`payments/gateways/currencies.py`), as Stripe and PayPal differ from ISO.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, overload

from babel.numbers import format_currency, get_currency_precision, list_currencies
from django.core.exceptions import ValidationError
from django.db import models

DECIMAL_PRECISION = 38
AMOUNT_MAX_DIGITS = 30
AMOUNT_DECIMAL_PLACES = 12
ZERO = Decimal("0")


class CurrencyError(ValueError):
    pass


@cache
def known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def validate_currency(code: str) -> str:
    if not isinstance(code, str) or code.upper() != code or code not in known_currencies():
        raise CurrencyError(f"{code!r} is not an ISO 4217 currency code.")
    return code


def validate_currency_field(code: str) -> None:
    """Django validator form of `validate_currency`."""
    try:
        validate_currency(code)
    except CurrencyError as exc:
        raise ValidationError(str(exc), code="invalid_currency")


@cache
def minor_unit_exponent(currency: str) -> int:
    """Digits after the decimal point in the currency's minor unit (ISO 4217 via CLDR)."""
    validate_currency(currency)
    return get_currency_precision(currency)


def require_decimal(amount: object) -> Decimal:
    """The gate every money function passes its inputs through: Decimal or int, never
    float (nor bool, which is an int to Python but never an amount)."""
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise TypeError(f"money must be Decimal, got {type(amount).__name__}")
    amount = Decimal(amount)
    if not amount.is_finite():
        raise ValueError(f"money must be finite, got {amount}")
    return amount


_require_decimal = require_decimal


def parse_decimal(text: str | int | Decimal) -> Decimal:
    """People's and integrators' input ('12.50') to Decimal; floats are refused, so a
    JSON number parsed as float never becomes money silently."""
    if isinstance(text, str):
        try:
            return require_decimal(Decimal(text.strip()))
        except ArithmeticError as exc:
            raise ValueError(f"{text!r} is not a decimal number") from exc
    return require_decimal(text)


def decimal_places(value: Decimal) -> int:
    """Digits after the point as written ('1.50' has 2, '1E+2' has 0); finite values only."""
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):  # 'n', 'N', 'F': NaN, sNaN, Infinity
        raise ValueError(f"{value} has no decimal places")
    return max(-exponent, 0)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """The one rounding rule: half-up to the currency's minor unit."""
    amount = _require_decimal(amount)
    quantum = Decimal(1).scaleb(-minor_unit_exponent(currency))
    return amount.quantize(quantum, rounding=ROUND_HALF_UP)


STORED_QUANTUM = Decimal(1).scaleb(-AMOUNT_DECIMAL_PLACES)


def round_stored(amount: Decimal) -> Decimal:
    """Half-up to the stored precision (12 places): for amounts that are not yet an
    invoice line, such as a minute's charge or a burn rate."""
    return _require_decimal(amount).quantize(STORED_QUANTUM, rounding=ROUND_HALF_UP)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Provider boundary only. The amount must already be rounded to the minor unit."""
    amount = _require_decimal(amount)
    rounded = round_money(amount, currency)
    if rounded != amount:
        raise ValueError(f"{amount} {currency} is not a whole number of minor units")
    return int(rounded.scaleb(minor_unit_exponent(currency)))


def from_minor_units(units: int, currency: str) -> Decimal:
    if isinstance(units, bool) or not isinstance(units, int):
        raise TypeError("minor units must be an int")
    return Decimal(units).scaleb(-minor_unit_exponent(currency))


def total_of_lines(amounts: Iterable[Decimal], currency: str) -> Decimal:
    """An invoice total: the sum of its lines, each rounded once. Never round a sum of
    unrounded lines instead: the customer must be able to add up what they see."""
    return sum((round_money(a, currency) for a in amounts), ZERO)


def format_money(amount: Decimal, currency: str, locale: str = "en_US") -> str:
    """For people: '$1,234.50', '¥1,235', 'BHD 1.235' (no-break space). Rounds for display only."""
    return _spaced(format_currency(round_money(amount, currency), currency, locale=locale), currency)


def format_rate(amount: Decimal, currency: str, locale: str = "en_US") -> str:
    """For people, a rate that is not money yet: '$0.0298', '$23.92', '0,8602 €'. Never
    rounded (a per-minute or per-GB rate has more places than the currency); at least
    the currency's minor digits are shown."""
    amount = require_decimal(amount)
    validate_currency(currency)
    text = format_currency(amount.normalize(), currency, locale=locale, decimal_quantization=False)
    return _spaced(text, currency)


def _spaced(text: str, currency: str) -> str:
    # CLDR writes codes without a symbol flush against the number ('BHD1.235').
    if text.startswith(currency) and text[len(currency):len(currency) + 1].isdigit():
        return f"{currency}\xa0{text[len(currency):]}"
    return text


if TYPE_CHECKING:
    from django.db.models.expressions import Combinable

    # What a Decimal column takes and gives, so a helper-made field is typed like a direct
    # DecimalField (django-stubs reads `null=` only on a direct call).
    DecimalColumn = models.DecimalField[Decimal | int | str | Combinable, Decimal]
    NullableDecimalColumn = models.DecimalField[Decimal | int | str | Combinable | None, Decimal | None]


@overload
def money_field(*, null: Literal[False] = False, **kwargs: Any) -> DecimalColumn: ...
@overload
def money_field(*, null: Literal[True], **kwargs: Any) -> NullableDecimalColumn: ...
def money_field(*, null: bool = False, **kwargs: Any) -> DecimalColumn | NullableDecimalColumn:
    """A DecimalField with the project-wide precision."""
    kwargs.setdefault("max_digits", AMOUNT_MAX_DIGITS)
    kwargs.setdefault("decimal_places", AMOUNT_DECIMAL_PLACES)
    return models.DecimalField(null=null, **kwargs)


def currency_field(**kwargs: Any) -> models.CharField[str | int | Combinable, str]:
    kwargs.setdefault("max_length", 3)
    kwargs.setdefault("validators", [validate_currency_field])
    return models.CharField(**kwargs)
