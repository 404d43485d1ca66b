"""What each provider takes, per currency: one table per provider, at the provider boundary.

Our amounts are Decimals in the currency's ISO 4217 / CLDR precision (`core.money`). The
providers do not all agree with CLDR, so every amount sent to a provider, and every amount
read back from one (API answers, webhooks), goes through the provider's own table here,
never through `core.money.to_minor_units` / `from_minor_units`:

Stripe (https://docs.stripe.com/currencies, for the API version the pinned SDK sends):
- amounts are integers in Stripe's minor unit: two decimals unless the currency is one of
  Stripe's zero-decimal currencies (`STRIPE_ZERO_DECIMAL`) or three-decimal currencies
  (`STRIPE_THREE_DECIMAL`);
- ISK and UGX are zero-decimal in ISO/CLDR but two-decimal in Stripe's API for backwards
  compatibility: 10,000 ISK is sent as 1000000, and the two decimals must be 00
  (`invalid_charge_amount_no_decimal_compatible`);
- HUF and TWD are two-decimal for charges (Stripe pays them out only in whole units);
- three-decimal currencies (BHD, JOD, KWD, OMR, TND) need the last digit 0: 5.124 KWD is
  refused, 5.120 taken;
- a charge is at least the currency's minimum (`STRIPE_MINIMUM_CHARGE`, in Stripe's table
  for the currencies it lists; for others Stripe converts to the account's settlement
  currency, which we cannot know here, and its `amount_too_small` answer is a refusal) and
  at most eight digits of minor units (twelve for IDR).

PayPal (https://developer.paypal.com/api/rest/reference/currency-codes/): only the
currencies in `PAYPAL_CURRENCIES`; decimal strings with two decimals, none for HUF, JPY and
TWD ("decimal amounts cause an error"), and a value greater than zero.

An amount a provider cannot take raises `ProviderAmountError` (a `DomainError`: a 4xx in
the API, a form message in the portal) before anything is sent: `check_amount` runs when a
payment or a refund is created, and the converting functions check again at the call.
"""

from __future__ import annotations

from decimal import Decimal

from core.errors import DomainError
from core.money import format_money, known_currencies, require_decimal, round_money
from payments.models import Provider


class ProviderAmountError(DomainError):
    """The provider would refuse this amount or currency; nothing was sent."""

    status_code = 422
    code = "amount_not_accepted"


# --- Stripe ----------------------------------------------------------------------------

STRIPE_ZERO_DECIMAL = frozenset({
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "VND", "VUV", "XAF", "XOF", "XPF",
})
STRIPE_THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
# Zero-decimal in fact, two-decimal in Stripe's API: the decimals must be 00.
STRIPE_WHOLE_UNITS_IN_TWO_DECIMALS = frozenset({"ISK", "UGX"})

# Stripe's presentment currencies for card payments.
STRIPE_CURRENCIES = frozenset({
    "USD", "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN",
    "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY",
    "COP", "CRC", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL",
    "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "MAD",
    "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO",
    "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB",
    "RWF", "SAR", "SBD", "SCR", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "STD", "SZL", "THB", "TJS", "TND",
    "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "UYU", "UZS", "VND", "VUV", "WST", "XAF", "XCD", "XCG",
    "XOF", "XPF", "YER", "ZAR", "ZMW",
})

# Stripe's minimum charge amounts, for the currencies its table lists.
STRIPE_MINIMUM_CHARGE = {
    "USD": Decimal("0.50"), "AED": Decimal("2.00"), "AUD": Decimal("0.50"), "BGN": Decimal("1.00"),
    "BRL": Decimal("0.50"), "CAD": Decimal("0.50"), "CHF": Decimal("0.50"), "CZK": Decimal("15.00"),
    "DKK": Decimal("2.50"), "EUR": Decimal("0.50"), "GBP": Decimal("0.30"), "HKD": Decimal("4.00"),
    "HUF": Decimal("175.00"), "INR": Decimal("0.50"), "JPY": Decimal("50"), "MXN": Decimal("10"),
    "MYR": Decimal("2"), "NOK": Decimal("3.00"), "NZD": Decimal("0.50"), "PLN": Decimal("2.00"),
    "RON": Decimal("2.00"), "SEK": Decimal("3.00"), "SGD": Decimal("0.50"), "THB": Decimal("10"),
}
STRIPE_MAX_MINOR_UNITS = 99_999_999  # eight digits
STRIPE_MAX_MINOR_UNITS_BY_CURRENCY = {"IDR": 999_999_999_999}  # twelve for IDR


def stripe_exponent(currency: str) -> int:
    """Digits after the point in Stripe's minor unit (not always the ISO/CLDR one)."""
    if currency in STRIPE_ZERO_DECIMAL:
        return 0
    if currency in STRIPE_THREE_DECIMAL:
        return 3
    return 2


def _stripe_step(currency: str) -> int:
    """Stripe's amounts in this currency are multiples of this many minor units."""
    if currency in STRIPE_WHOLE_UNITS_IN_TWO_DECIMALS:
        return 100
    if currency in STRIPE_THREE_DECIMAL:
        return 10
    return 1


def _refuse(message: str) -> ProviderAmountError:
    return ProviderAmountError(message, field="amount")


def stripe_amount(amount: Decimal, currency: str, *, charge: bool = True) -> int:
    """An amount in Stripe's minor units, or `ProviderAmountError` for one Stripe would
    refuse. `charge=False` (refunds) skips the minimum, which applies to charges."""
    amount = require_decimal(amount)
    if currency not in STRIPE_CURRENCIES:
        raise ProviderAmountError(f"Card payments through Stripe cannot be made in {currency}.", field="currency")
    if amount <= 0:
        raise _refuse("Enter an amount greater than zero.")
    units = amount.scaleb(stripe_exponent(currency))
    if units != units.to_integral_value():
        raise _refuse(f"{amount} {currency} has more decimals than Stripe takes for {currency}.")
    step = _stripe_step(currency)
    if units % step:
        if step == 100:
            raise _refuse(f"Stripe takes {currency} in whole units only: {amount} {currency} has a fraction.")
        raise _refuse(f"Stripe needs {currency} amounts rounded to the nearest ten (last digit 0): "
                      f"{amount} {currency} is not.")
    top = STRIPE_MAX_MINOR_UNITS_BY_CURRENCY.get(currency, STRIPE_MAX_MINOR_UNITS)
    if units > top:
        raise _refuse(f"Stripe charges at most {format_money(from_stripe_amount(top, currency), currency)} at once.")
    minimum = STRIPE_MINIMUM_CHARGE.get(currency)
    if charge and minimum is not None and amount < minimum:
        raise _refuse(f"Stripe charges at least {format_money(minimum, currency)}.")
    return int(units)


def from_stripe_amount(units: object, currency: str) -> Decimal:
    """A Stripe amount (minor units, a JSON integer) back in our precision. The currency is
    as Stripe writes it (lower case) or ours."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise TypeError(f"Stripe amounts are integers of minor units, not {units!r}")
    currency = currency.upper()
    value = Decimal(units).scaleb(-stripe_exponent(currency))
    if currency in known_currencies():
        rounded = round_money(value, currency)
        if rounded == value:
            return rounded
    return value


# --- PayPal ----------------------------------------------------------------------------

PAYPAL_NO_DECIMALS = frozenset({"HUF", "JPY", "TWD"})
PAYPAL_CURRENCIES = frozenset({
    "AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "HUF", "ILS", "JPY", "MYR", "MXN", "TWD", "NZD",
    "NOK", "PHP", "PLN", "GBP", "SGD", "SEK", "CHF", "THB", "USD",
})


def paypal_decimals(currency: str) -> int:
    return 0 if currency in PAYPAL_NO_DECIMALS else 2


def paypal_amount(amount: Decimal, currency: str) -> str:
    """PayPal's decimal string ("10.50", "1000" for JPY and HUF), or `ProviderAmountError`
    for an amount or currency PayPal would refuse."""
    amount = require_decimal(amount)
    if currency not in PAYPAL_CURRENCIES:
        raise ProviderAmountError(f"PayPal does not take payments in {currency}.", field="currency")
    if amount <= 0:
        raise _refuse("Enter an amount greater than zero.")
    quantum = Decimal(1).scaleb(-paypal_decimals(currency))
    value = amount.quantize(quantum)
    if value != amount:
        if currency in PAYPAL_NO_DECIMALS:
            raise _refuse(f"PayPal takes {currency} in whole units only: {amount} {currency} has a fraction.")
        raise _refuse(f"PayPal takes {currency} with at most two decimals.")
    return f"{value:f}"


# --- one check for every provider ------------------------------------------------------


def check_amount(provider: str, amount: Decimal, currency: str, *, refund: bool = False) -> None:
    """Refuse, before any call, an amount the provider would not take (nothing to check for
    the sandbox and manual payments)."""
    if provider == Provider.STRIPE:
        stripe_amount(amount, currency, charge=not refund)
    elif provider == Provider.PAYPAL:
        paypal_amount(amount, currency)
