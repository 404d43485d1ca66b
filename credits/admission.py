"""Runway admission: may organisation X start product Y (quantity Q) now?

The provisioning platform asks before it starts anything (`POST /api/v1/admission`, and
the demo's sandbox panel asks the same function). The answer is allowed or refused with
a reason code, and the runway the organisation would have after the start:

- the burn rate now is the organisation's per-hour rate as metering charges it every
  minute (`usage.AccrualRate`: the rates in force for its resources, a capped price whose
  month is used up counting 0), read as of the last metering minute;
- the start adds the product's price for the `running` state (contract overrides
  applied; a monthly price counts its hourly share of this month) × the quantity;
- prepaid: the balance (promotional credit included) must be above zero and last at
  least the policy's hours at the new rate; postpaid with a credit limit: what the limit
  leaves (limit − owed) must, likewise; postpaid without a limit is always allowed;
- the policy is per organisation (`credits.models.AdmissionPolicy`, edited in the console) or the
  default `CREDITS_ADMISSION_MIN_RUNWAY_HOURS`; a policy can also turn the check off for
  a trusted customer.

Reason codes (stable, for the platform's code): `no_credit`, `insufficient_runway`,
`credit_limit_reached`, `insufficient_credit_limit`, `no_price`, `product_inactive`,
`organization_inactive`, `budget_cap_reached` (a budget's hard cap holds this month:
budgets.admission, through `CREDITS_ADMISSION_CHECKS`; each check takes `organization`,
`now` and `project`, the optional slug of the project the start would be in, so a
project budget's cap refuses only starts in its project). Reading never writes: an answer is advice at one instant, not a
reservation (two starts asked for at once may both be allowed; the next answer sees
both once metering has).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.models import BillingMode, Organization
from core import prepared
from core.money import ZERO, format_money, round_stored
from credits.runway import describe_runway, runway_hours
from pricing.models import Product
from pricing.proration import minutes_in_month

MAX_QUANTITY = 10_000


class Reason:
    NO_CREDIT = "no_credit"
    INSUFFICIENT_RUNWAY = "insufficient_runway"
    CREDIT_LIMIT_REACHED = "credit_limit_reached"
    INSUFFICIENT_CREDIT_LIMIT = "insufficient_credit_limit"
    NO_PRICE = "no_price"
    PRODUCT_INACTIVE = "product_inactive"
    ORGANIZATION_INACTIVE = "organization_inactive"
    BUDGET_CAP_REACHED = "budget_cap_reached"


REASONS = [v for k, v in vars(Reason).items() if not k.startswith("_")]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str | None  # one of REASONS when refused
    message: str
    organization_id: int
    product: str
    quantity: int
    currency: str
    billing_mode: str
    funds: Decimal  # prepaid: the balance; postpaid: what the credit limit leaves (limit − owed), or the balance
    burn_rate_per_hour: Decimal  # now
    added_per_hour: Decimal  # what the start adds
    burn_rate_after: Decimal
    runway_hours_after: Decimal | None  # None: unlimited (nothing burns, or postpaid without a limit)
    min_runway_hours: Decimal
    checked: bool  # False: the organisation's policy turns the check off


# The organisation's side of a decision in one round trip: its policy, its burn rate now,
# its balance and the product's running price for it (the ORM's six queries cost most of
# a request). The price is the row of `pricing_effective_rate` (the list price with the
# contract's override, as metering rates it; it agrees with `pricing.resolver.resolve_price`,
# pricing/tests/test_resolver.py) in force now in the organisation's currency: the first
# by unit, as the resolver picks, and for an add-on its hourly price (a start has no parent).
_STATE_SQL = """
SELECT (SELECT min_runway_hours FROM credits_admissionpolicy WHERE organization_id = %(org)s),
       (SELECT enforce FROM credits_admissionpolicy WHERE organization_id = %(org)s),
       (SELECT COALESCE(SUM(rate_per_hour), 0) FROM usage_accrualrate
        WHERE organization_id = %(org)s AND currency = %(cur)s),
       (SELECT amount FROM credits_balance WHERE organization_id = %(org)s AND currency = %(cur)s),
       price.rate, price.unit
FROM (SELECT 1) one
LEFT JOIN LATERAL (
    SELECT er.rate, er.unit FROM pricing_effective_rate er
    WHERE er.organization_id = %(org)s AND er.product_id = %(product)s AND er.state = 'running'
      AND er.currency = %(cur)s AND er.valid_from <= %(now)s AND (er.valid_to IS NULL OR er.valid_to > %(now)s)
      AND (%(billing_model)s <> 'addon' OR er.unit = 'hour')
    ORDER BY er.unit LIMIT 1
) price ON TRUE
"""


@dataclass(frozen=True)
class _State:
    min_runway_hours: Decimal
    enforce: bool
    burn: Decimal
    balance: Decimal
    rate: Decimal | None  # the product's running price for the organisation now; None: no price
    unit: str | None


def _state(organization: Organization, product: Product, now: datetime) -> _State:
    # Prepared once per database session (core.prepared): planning the effective-rate
    # view took ~6 ms of a ~8 ms statement. One statement: one snapshot, no transaction.
    with connection.cursor() as cursor:
        prepared.execute(cursor, _STATE_SQL, {"org": organization.pk, "cur": organization.currency,
                                              "product": product.pk, "now": now,
                                              "billing_model": product.billing_model})
        hours, enforce, burn, balance, rate, unit = cursor.fetchone()
    if hours is None:
        hours, enforce = settings.CREDITS_ADMISSION_MIN_RUNWAY_HOURS, True
    return _State(hours, enforce, burn, balance if balance is not None else ZERO, rate, unit)


def _hourly(rate: Decimal | None, unit: str | None, quantity: int, now: datetime) -> Decimal | None:
    """Per hour, what `quantity` at `rate` per `unit` costs now; None: no hourly meaning."""
    if rate is None:
        return None
    if unit == "hour":
        hourly = rate
    elif unit == "month":
        hourly = rate * 60 / minutes_in_month(now)
    else:
        return None
    return round_stored(hourly * quantity)


def admit(*, organization: Organization, product: Product, quantity: int = 1,
          now: datetime | None = None, project: str | None = None) -> Decision:
    """`project`: the slug of the project the start would be in (None: none said), for
    the checks that depend on it (a project budget's hard cap)."""
    now = now or timezone.now()
    currency = organization.currency
    state = _state(organization, product, now)
    hours, enforce, burn, balance = state.min_runway_hours, state.enforce, state.burn, state.balance
    postpaid = organization.billing_mode == BillingMode.POSTPAID
    limited = postpaid and organization.credit_limit > 0
    funds = organization.credit_limit - max(-balance, ZERO) if limited else balance
    added = _hourly(state.rate, state.unit, quantity, now) if product.is_active else None
    after = burn + (added or ZERO)
    runway = runway_hours(funds, after) if (limited or not postpaid) else None

    def decide(reason: str | None, message: str) -> Decision:
        return Decision(
            allowed=reason is None, reason=reason, message=message, organization_id=organization.pk,
            product=product.code, quantity=quantity, currency=currency, billing_mode=organization.billing_mode,
            funds=funds, burn_rate_per_hour=burn, added_per_hour=added or ZERO, burn_rate_after=after,
            runway_hours_after=runway, min_runway_hours=hours, checked=enforce)

    if not organization.is_active:
        return decide(Reason.ORGANIZATION_INACTIVE, "The organisation is deactivated.")
    if not product.is_active:
        return decide(Reason.PRODUCT_INACTIVE, f"{product.name} is no longer offered.")
    if added is None:
        return decide(Reason.NO_PRICE, f"{product.name} has no price for this organisation in {currency}; "
                                       "it could not be billed.")
    # Checks other apps add (budgets' hard caps), through a setting: credits come first.
    for check in settings.CREDITS_ADMISSION_CHECKS:
        refused = import_string(check)(organization=organization, now=now, project=project)
        if refused is not None:
            return decide(*refused)
    if not enforce:
        return decide(None, "Allowed: the runway check is off for this organisation.")
    money = format_money(funds, currency)
    if not postpaid:
        if funds <= 0:
            return decide(Reason.NO_CREDIT, f"No credit left ({money}): top up first.")
        if runway is not None and runway < hours:
            return decide(Reason.INSUFFICIENT_RUNWAY, f"{money} of credit would last {_hours(runway)} at "
                          f"{format_money(after, currency)}/h; at least {_hours(hours)} is required.")
        return decide(None, f"Allowed: {describe_runway(runway)} after the start.")
    if not limited:
        return decide(None, "Allowed: postpaid without a credit limit.")
    if funds <= 0:
        return decide(Reason.CREDIT_LIMIT_REACHED, f"The credit limit of "
                      f"{format_money(organization.credit_limit, currency)} is used up.")
    if runway is not None and runway < hours:
        return decide(Reason.INSUFFICIENT_CREDIT_LIMIT, f"The {money} the credit limit leaves would last "
                      f"{_hours(runway)} at {format_money(after, currency)}/h; at least {_hours(hours)} is required.")
    return decide(None, f"Allowed: the credit limit leaves {money}.")


def _hours(h: Decimal) -> str:
    if h < 1:
        minutes = int(h * 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    text = f"{h.quantize(Decimal('0.1')).normalize():f}"
    return f"{text} hour{'s' if text != '1' else ''}"


def admit_sandbox(*, organization: Organization, product: Product) -> Decision:
    """What the demo's sandbox panel asks before it starts a server (settings.USAGE_ADMISSION)."""
    return admit(organization=organization, product=product, quantity=1)
