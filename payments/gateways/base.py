"""What every payment gateway offers, and the outcomes it reports.

A gateway is the only code that talks to a provider. It converts amounts to the
provider's units and back through that provider's table (`payments.gateways.currencies`), sends our idempotency key with every call that
creates something, and sorts every provider error into one of four kinds (`ErrorKind`),
each its own exception, so no caller mistakes one for another:

- `GatewayDeclined` (declined): the provider answered no for a business reason (card or
  PayPal instrument declined, refund refused). Only this counts as a failed attempt:
  dunning, a failed top-up, the customer told.
- `GatewayActionRequired` (needs action): the customer must act before the provider can
  go on (Stripe `authentication_required`, PayPal `PAYER_ACTION_REQUIRED`). The payment
  waits in `requires_action`; nobody is dunned.
- `GatewayUnavailable` (retry later): the outcome is unknown or the provider asks us to
  wait (timeouts, connection errors, 408/409/425/429, 5xx, Stripe's
  `idempotency_key_in_use` and `lock_timeout`, PayPal's `PREVIOUS_REQUEST_IN_PROGRESS`).
  Retry the same call with the same key while the provider still holds it (Stripe 24 h):
  the provider acts at most once.
- `GatewayIntegrationError` (our bug): the provider refused the request as malformed
  (400 invalid request, an idempotency key reused with other parameters, bad
  credentials, an unknown id). Logged as an error for staff; never a decline, never
  retried blindly, never sends a customer into dunning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from core.errors import DomainError

if TYPE_CHECKING:
    from accounts.models import Organization
    from payments.models import Payment, PaymentMethod, Refund


logger = logging.getLogger(__name__)


class ErrorKind(StrEnum):
    DECLINED = "declined"
    NEEDS_ACTION = "needs_action"
    RETRY_LATER = "retry_later"
    OUR_BUG = "our_bug"


class GatewayError(DomainError):
    """A provider's answer other than success; `kind` says what the caller does next.
    `provider_code` is the provider's own reason (Stripe's error code, PayPal's issue)."""

    kind: ClassVar[ErrorKind]
    provider_code: str = ""


class GatewayUnavailable(GatewayError):
    """Retry later, with the same key. A 503 in the error format: the customer may try again."""

    kind = ErrorKind.RETRY_LATER
    status_code = 503
    code = "provider_unavailable"


class GatewayDeclined(GatewayError):
    kind = ErrorKind.DECLINED
    status_code = 402
    code = "payment_declined"


class GatewayActionRequired(GatewayError):
    """The customer must confirm (3-D Secure, PayPal approval). `provider_payment_id`
    names the provider's payment waiting for them, when there is one."""

    kind = ErrorKind.NEEDS_ACTION
    status_code = 402
    code = "authentication_required"

    def __init__(self, message: str, *, code: str | None = None, provider_payment_id: str = ""):
        super().__init__(message, code=code)
        self.provider_payment_id = provider_payment_id


class GatewayIntegrationError(GatewayError):
    """The provider refused our request as malformed: a bug or misconfiguration on our
    side, for staff. A 502 in the error format: the customer's input was not at fault,
    and the message says nothing of the provider's internals."""

    kind = ErrorKind.OUR_BUG
    status_code = 502
    code = "provider_integration_error"


KIND_ERRORS: dict[ErrorKind, type[GatewayError]] = {
    ErrorKind.DECLINED: GatewayDeclined,
    ErrorKind.NEEDS_ACTION: GatewayActionRequired,
    ErrorKind.RETRY_LATER: GatewayUnavailable,
    ErrorKind.OUR_BUG: GatewayIntegrationError,
}
# Statuses that ask us to come back: request timeout, conflict (another request with the
# same key or on the same object is in progress), too early, rate limited.
RETRY_LATER_STATUSES = frozenset({408, 409, 425, 429})


def kind_of_status(status: int) -> ErrorKind:
    """The kind of an HTTP error a provider gave without a more specific reason."""
    if status in RETRY_LATER_STATUSES or status >= 500 or status == 0:
        return ErrorKind.RETRY_LATER
    return ErrorKind.OUR_BUG


OUR_BUG_MESSAGE = "The payment provider refused our request because of a problem on our side; our staff have been told."


def provider_error(kind: ErrorKind, *, provider: str, detail: str, code: str,
                   message: str | None = None) -> GatewayError:
    """The exception for a provider error of `kind`. `detail` is the provider's own
    words, for logs; an error of ours is logged at ERROR with them, and the customer sees
    only `OUR_BUG_MESSAGE`."""
    error: GatewayError
    if kind == ErrorKind.OUR_BUG:
        logger.error("payments: %s refused our request (%s): %s", provider, code, detail)
        error = GatewayIntegrationError(OUR_BUG_MESSAGE)
    elif kind == ErrorKind.RETRY_LATER:
        # The error format's code stays `provider_unavailable`, whatever the provider said.
        logger.warning("payments: %s asks us to retry later (%s): %s", provider, code, detail)
        error = GatewayUnavailable(message or f"{provider} is busy or did not answer; please try again in a few minutes.")
    else:
        error = KIND_ERRORS[kind](message or detail, code=code)
    error.provider_code = code
    return error


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

    def expire_checkout(self, payment: Payment) -> PaymentSnapshot:
        """End a hosted checkout nobody finished so it can never be paid; `canceled` when
        it is over, else where the provider says it stands (the customer paid it meanwhile)."""
        ...

    # How long the provider remembers the key of a refund's create, less a margin: inside
    # it a lost answer is asked again with the same key; past it only looked up.
    refund_key_lifetime: timedelta

    def refund(self, refund: Refund) -> RefundSnapshot: ...

    def refund_lookup(self, refund: Refund) -> RefundSnapshot | None:
        """Where a refund we created stands at the provider: by its provider id when we
        know it, else found among the payment's refunds by our id; None if not there."""
        ...


class CardGateway(Gateway, Protocol):
    """A provider that keeps saved cards and charges them off-session."""

    def start_setup(self, organization: Organization, *, success_url: str, cancel_url: str) -> CheckoutStarted: ...

    def charge_saved_method(self, payment: Payment) -> PaymentSnapshot: ...

    def detach(self, method: PaymentMethod) -> None: ...
