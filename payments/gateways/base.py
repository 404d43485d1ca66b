"""What every payment gateway offers, and the outcomes it reports.

A gateway is the only code that talks to a provider. It converts amounts to minor units
(`core.money.to_minor_units`) and back, sends our idempotency key with every call that
creates something, and turns provider errors into two kinds:
- `GatewayUnavailable`: the outcome is unknown (timeout, connection reset, 5xx). Retry
  the same call with the same key; the provider acts at most once.
- `GatewayDeclined`: the provider answered no (card declined, refund refused).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from core.errors import DomainError


class GatewayUnavailable(DomainError):
    status_code = 503
    code = "provider_unavailable"


class GatewayDeclined(DomainError):
    status_code = 402
    code = "payment_declined"


@dataclass(frozen=True)
class CheckoutStarted:
    checkout_id: str
    redirect_url: str


@dataclass(frozen=True)
class PaymentSnapshot:
    """What the provider says about a payment now."""

    status: str  # a PaymentStatus value
    provider_payment_id: str = ""
    provider_charge_id: str = ""
    failure_code: str = ""
    failure_message: str = ""
    amount: Decimal | None = None
    currency: str = ""


@dataclass(frozen=True)
class RefundSnapshot:
    provider_refund_id: str
    status: str  # a RefundStatus value
    amount: Decimal
    currency: str
    our_refund_id: int | None = None
    failure_message: str = ""


@dataclass(frozen=True)
class SavedMethod:
    provider_method_id: str
    provider_customer_id: str = ""
    brand: str = ""
    last4: str = ""
    exp_month: int | None = None
    exp_year: int | None = None
    extra: dict = field(default_factory=dict)
