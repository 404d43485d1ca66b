"""What every payment gateway offers, and the outcomes it reports.

A gateway is the only code that talks to a provider. It converts amounts to the
provider's units and back through that provider's table (`payments.gateways.currencies`), sends our idempotency key with every call that
creates something, and turns provider errors into two kinds:
- `GatewayUnavailable`: the outcome is unknown (timeout, connection reset, 5xx). Retry
  the same call with the same key; the provider acts at most once.
- `GatewayDeclined`: the provider answered no (card declined, refund refused).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from core.errors import DomainError

if TYPE_CHECKING:
    from accounts.models import Organization
    from payments.models import Payment, PaymentMethod, Refund


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
    extra: dict[str, Any] = field(default_factory=dict)


class Gateway(Protocol):
    """What every provider does: hosted checkout, where a payment stands, refunds."""

    @property
    def provider(self) -> str: ...

    def start_checkout(self, payment: Payment, *, description: str, success_url: str,
                       cancel_url: str) -> CheckoutStarted: ...

    def snapshot(self, payment: Payment) -> PaymentSnapshot | None: ...

    def refund(self, refund: Refund) -> RefundSnapshot: ...


class CardGateway(Gateway, Protocol):
    """A provider that keeps saved cards and charges them off-session."""

    def start_setup(self, organization: Organization, *, success_url: str, cancel_url: str) -> CheckoutStarted: ...

    def charge_saved_method(self, payment: Payment) -> PaymentSnapshot: ...

    def detach(self, method: PaymentMethod) -> None: ...
