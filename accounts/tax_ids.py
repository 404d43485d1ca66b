"""Countries and VAT numbers of billing profiles: the country is an ISO 3166-1 alpha-2 code
django-countries knows (it picks the tax rate); a VAT id is checked with its country's
check digits by python-stdnum (it decides the EU reverse charge, invoices.tax_rules).

Invariant: a VAT id stored through `Organization.clean` is compact ('NL004495445B01', no
spaces or dots) and belongs to the profile's country (Greece's ids start EL).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django_countries import countries
from stdnum import get_cc_module
from stdnum.exceptions import ValidationError as NumberError

# Greece's VAT ids start with EL, not its ISO code.
VAT_PREFIX = {"GR": "EL"}
EU_COUNTRIES = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)


def is_country(code: str) -> bool:
    return bool(code) and code in countries


def validate_country(code: str) -> None:
    """Model validator: blank, or a country of ISO 3166-1."""
    if code and not is_country(code):
        raise ValidationError(f"{code!r} is not a country code: choose the country from the list (ISO 3166, e.g. DE).",
                              code="invalid_country")


def _module(country: str) -> Any:
    """python-stdnum's VAT module for the country (EU members through the EU's VIES
    rules, whose ids carry the country prefix), or None when it has none."""
    if country in EU_COUNTRIES:
        return get_cc_module("eu", "vat")
    return get_cc_module(country.lower(), "vat") if country else None


def vat_id_problem(vat_id: str, country: str) -> str | None:
    """Why `vat_id` is not a VAT number of `country`, in words for the form; None when it is."""
    if not vat_id:
        return None
    if not country:
        return "Choose the country first: a VAT id is checked against its country."
    module = _module(country)
    if module is None:
        return None  # no check-digit rules known for this country: stored as typed
    try:
        number = module.validate(vat_id)
    except NumberError:
        return (f"{vat_id} is not a valid VAT number for {countries.name(country) or country}: "
                "check the digits (the last ones are a check digit).")
    if country in EU_COUNTRIES and number[:2] != VAT_PREFIX.get(country, country):
        return (f"{vat_id} is a VAT number of {countries.name(_iso(number[:2])) or number[:2]}, "
                f"not {countries.name(country)}: it must start with {VAT_PREFIX.get(country, country)}.")
    return None


def _iso(prefix: str) -> str:
    return {v: k for k, v in VAT_PREFIX.items()}.get(prefix, prefix)


def compact_vat_id(vat_id: str, country: str) -> str:
    """The stored form: 'nl 0044.95445.b01' → 'NL004495445B01'; EU ids keep their prefix."""
    module = _module(country)
    if not vat_id or module is None:
        return vat_id.strip()
    number = module.compact(vat_id)
    return number


def vat_id_is_valid(vat_id: str, country: str) -> bool:
    """For the tax rules: a VAT id that passes its country's check digits. A country whose
    rules python-stdnum does not know never counts (no reverse charge on an unchecked id)."""
    return bool(vat_id) and _module(country) is not None and vat_id_problem(vat_id, country) is None


def billing_profile_problems(country: str, vat_id: str) -> list[str]:
    """What is wrong with a stored (country, VAT id), in words; empty when both are fine."""
    if country and not is_country(country):
        return [f"country {country!r} is not an ISO 3166 country"]
    problem = vat_id_problem(vat_id, country)
    return [problem] if problem else []
