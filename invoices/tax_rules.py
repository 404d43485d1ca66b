"""Which tax applies to an organisation.

- Tax-exempt customers: 0 %, with an exemption note.
- EU reverse charge: seller and customer in different EU member states and the customer
  has a VAT id of its country that passes the country's check digits (python-stdnum,
  accounts.tax_ids; checked offline, no VIES lookup): 0 %, with the Article 196 note.
- Otherwise: the staff-kept `TaxRate` of the customer's country in force on the first
  day of the period, or 0 % where none is kept, with its reason: outside the scope of EU
  VAT for customers outside the EU, else outside our tax registrations.

Every 0 % treatment carries a note, printed on the document beside the 0 % line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db.models import Q

from accounts.models import Organization
from accounts.tax_ids import EU_COUNTRIES, vat_id_is_valid
from invoices.models import TaxRate

REVERSE_CHARGE_NOTE = "Reverse charge: VAT to be accounted for by the recipient (Article 196, Directive 2006/112/EC)."
EXEMPT_NOTE = "Tax exempt customer: no tax charged."
OUTSIDE_EU_NOTE = "Outside the scope of EU VAT: the customer is established outside the EU (Article 44, Directive 2006/112/EC)."
NO_REGISTRATION_NOTE = "No VAT charged: the customer's country is outside our tax registrations."
ZERO_RATE = Decimal("0")


@dataclass(frozen=True)
class TaxTreatment:
    rate: Decimal
    name: str = ""
    note: str = ""
    reverse_charge: bool = False


def seller_country() -> str:
    return settings.INVOICE_SELLER["country"]


def rates_on(day: date) -> dict[str, TaxRate]:
    qs = TaxRate.objects.filter(Q(valid_to__isnull=True) | Q(valid_to__gt=day), valid_from__lte=day)
    # Ascending, so the latest rate in force wins for each country.
    return {r.country: r for r in qs.order_by("country", "valid_from")}


def zero_rate_note(country: str) -> str:
    """Why no tax is charged to a customer of `country` with no exemption and no reverse
    charge: a 0 % line always prints its reason."""
    if seller_country() in EU_COUNTRIES and country not in EU_COUNTRIES:
        return OUTSIDE_EU_NOTE
    return NO_REGISTRATION_NOTE


def treatment_for(org: Organization, rates: dict[str, TaxRate]) -> TaxTreatment:
    if org.tax_exempt:
        return TaxTreatment(ZERO_RATE, note=EXEMPT_NOTE)
    country = org.country
    if (
        country in EU_COUNTRIES
        and seller_country() in EU_COUNTRIES
        and country != seller_country()
        and org.vat_id
        and vat_id_is_valid(org.vat_id, country)  # its check digits, not just its shape
    ):
        return TaxTreatment(ZERO_RATE, note=REVERSE_CHARGE_NOTE, reverse_charge=True)
    rate = rates.get(country)
    if rate is None:
        return TaxTreatment(ZERO_RATE, note=zero_rate_note(country))
    return TaxTreatment(rate.rate, name=f"{rate.name} {rate.rate.normalize():f}%")
