"""Start-up checks for credits' settings: a missing or malformed staff adjustment limit
would otherwise let any staff member post any amount, or refuse every adjustment."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from core.money import CurrencyError, validate_currency


@register()
def check_adjustment_staff_limits(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    limits = getattr(settings, "CREDITS_ADJUSTMENT_STAFF_LIMITS", None)
    hint = 'A dict of currency code (or "default") to a positive Decimal, e.g. {"default": Decimal("5000")}.'
    if not isinstance(limits, dict) or "default" not in limits:
        return [
            Error('CREDITS_ADJUSTMENT_STAFF_LIMITS needs a "default" limit.', hint=hint, id="credits.E001")
        ]
    errors = []
    for code, value in limits.items():
        if code != "default":
            try:
                validate_currency(code)
            except CurrencyError:
                errors.append(
                    Error(
                        f"CREDITS_ADJUSTMENT_STAFF_LIMITS: {code!r} is not a currency code.",
                        hint=hint,
                        id="credits.E002",
                    )
                )
        if isinstance(value, bool) or not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
            errors.append(
                Error(
                    f"CREDITS_ADJUSTMENT_STAFF_LIMITS[{code!r}] = {value!r} is not a positive Decimal.",
                    hint=hint,
                    id="credits.E003",
                )
            )
    return errors


@register()
def check_topup_minimum(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """The one top-up minimum (credits.services.topups.topup_minimum): without a valid one
    a form would take any amount the server then refuses, or refuse every amount."""
    minimums = getattr(settings, "CREDITS_TOPUP_MIN", None)
    hint = 'A dict of currency code (or "default") to a positive Decimal, e.g. {"default": Decimal("5")}.'
    if not isinstance(minimums, dict) or "default" not in minimums:
        return [Error('CREDITS_TOPUP_MIN needs a "default" minimum.', hint=hint, id="credits.E004")]
    errors = []
    for code, value in minimums.items():
        if code != "default":
            try:
                validate_currency(code)
            except CurrencyError:
                errors.append(Error(f"CREDITS_TOPUP_MIN: {code!r} is not a currency code.", hint=hint,
                                    id="credits.E005"))
        if isinstance(value, bool) or not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
            errors.append(Error(f"CREDITS_TOPUP_MIN[{code!r}] = {value!r} is not a positive Decimal.", hint=hint,
                                id="credits.E006"))
    return errors
