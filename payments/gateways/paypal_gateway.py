"""PayPal through its current server SDK (`paypal-server-sdk`): Orders v2 create and
capture, capture refunds, all with `PayPal-Request-Id` built from our row ids.

Where the SDK falls short we call PayPal's REST API with `requests`, and only there:
the SDK has no webhook API, so verify-webhook-signature is a direct call (see
`verify_webhook`). It reuses the SDK's OAuth token.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

import requests
from django.conf import settings
from paypalserversdk.configuration import Configuration, Environment
from paypalserversdk.exceptions.api_exception import ApiException
from paypalserversdk.http.auth.o_auth_2 import ClientCredentialsAuthCredentials
from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient

from core import metrics
from payments.gateways.base import (
    CheckoutStarted,
    ErrorKind,
    GatewayActionRequired,
    GatewayDeclined,
    GatewayUnavailable,
    PaymentSnapshot,
    RefundSnapshot,
    kind_of_status,
    provider_error,
)
from payments.gateways.currencies import paypal_amount  # PayPal's own currency table
from payments.models import Payment, PaymentStatus, Provider, Refund, RefundStatus

ORDER_STATUS = {
    "CREATED": PaymentStatus.REQUIRES_ACTION,
    "SAVED": PaymentStatus.REQUIRES_ACTION,
    "PAYER_ACTION_REQUIRED": PaymentStatus.REQUIRES_ACTION,
    "APPROVED": PaymentStatus.PROCESSING,
    "VOIDED": PaymentStatus.CANCELED,
    "COMPLETED": PaymentStatus.SUCCEEDED,
}
CAPTURE_STATUS = {
    "COMPLETED": PaymentStatus.SUCCEEDED,
    "PENDING": PaymentStatus.PROCESSING,
    "DECLINED": PaymentStatus.FAILED,
    "FAILED": PaymentStatus.FAILED,
    "REFUNDED": PaymentStatus.SUCCEEDED,
    "PARTIALLY_REFUNDED": PaymentStatus.SUCCEEDED,
}
REFUND_STATUS = {"COMPLETED": RefundStatus.SUCCEEDED, "PENDING": RefundStatus.PENDING,
                 "FAILED": RefundStatus.FAILED, "CANCELLED": RefundStatus.CANCELED}
# PayPal's Payments v2 description: "The server stores keys for 45 days" (Orders v2: 6
# hours). A refund's request id is inside that, less a day's margin.
REFUND_KEY_LIFETIME = timedelta(days=44)


def api_base() -> str:
    if settings.PAYPAL_API_BASE:
        return settings.PAYPAL_API_BASE.rstrip("/")
    live = settings.PAYPAL_ENVIRONMENT == "production"
    return "https://api-m.paypal.com" if live else "https://api-m.sandbox.paypal.com"


class _Configuration(Configuration):
    """The SDK's configuration, pointed at `api_base()` (a local fake in tests)."""

    def __init__(self, *, base_uri: str, **kwargs: Any) -> None:
        self._base_uri = base_uri
        super().__init__(**kwargs)

    def get_base_uri(self, server: object = None) -> str:
        return self._base_uri


@lru_cache(maxsize=4)
def _client(client_id: str, secret: str, base: str, timeout: float, live: bool) -> PaypalServersdkClient:
    config = _Configuration(
        base_uri=base,
        timeout=timeout,
        max_retries=0,  # we retry, with the same PayPal-Request-Id
        environment=Environment.PRODUCTION if live else Environment.SANDBOX,
        client_credentials_auth_credentials=ClientCredentialsAuthCredentials(
            o_auth_client_id=client_id, o_auth_client_secret=secret
        ),
    )
    return PaypalServersdkClient(config=config)


def client() -> PaypalServersdkClient:
    return _client(settings.PAYPAL_CLIENT_ID, settings.PAYPAL_CLIENT_SECRET, api_base(),
                   float(settings.PAYMENTS_PROVIDER_TIMEOUT), settings.PAYPAL_ENVIRONMENT == "production")


# The SDK is untyped: its responses are read as the JSON PayPal sent.
PayPalJSON = dict[str, Any]


def _body(response: Any) -> PayPalJSON:
    return json.loads(response.text or "{}")


# PayPal's issues (the `details[].issue` of its error bodies, in its Orders v2 and
# Payments v2 descriptions) by kind; an issue in none of them goes by status
# (`kind_of_status`): a 4xx is a request of ours PayPal cannot take.
DECLINE_ISSUES = frozenset({
    "INSTRUMENT_DECLINED", "TRANSACTION_REFUSED", "PAYER_CANNOT_PAY", "PAYER_ACCOUNT_RESTRICTED",
    "PAYER_ACCOUNT_LOCKED_OR_CLOSED", "TRANSACTION_LIMIT_EXCEEDED", "TRANSACTION_RECEIVING_LIMIT_EXCEEDED",
    "MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED", "DECLINED_DUE_TO_RELATED_TXN", "REDIRECT_PAYER_FOR_ALTERNATE_FUNDING",
    "TRANSACTION_BLOCKED_BY_PAYEE", "PAYEE_BLOCKED_TRANSACTION", "COMPLIANCE_VIOLATION", "REFERENCED_CARD_EXPIRED",
    # refunds PayPal refuses for the capture's or the accounts' state (captures.refund-422)
    "CAPTURE_FULLY_REFUNDED", "REFUND_NOT_ALLOWED", "REFUND_TIME_LIMIT_EXCEEDED", "REFUND_AMOUNT_EXCEEDED",
    "REFUND_FAILED_INSUFFICIENT_FUNDS", "PARTIAL_REFUND_NOT_ALLOWED", "MAX_NUMBER_OF_REFUNDS_EXCEEDED", "PENDING_CAPTURE",
    "PAYEE_ACCOUNT_LOCKED_OR_CLOSED", "PAYEE_ACCOUNT_RESTRICTED", "REFUND_NOT_PERMITTED_DUE_TO_CHARGEBACK",
    "TRANSACTION_DISPUTED", "REFUND_IS_RESTRICTED",
})
NEEDS_ACTION_ISSUES = frozenset({"PAYER_ACTION_REQUIRED", "ORDER_NOT_APPROVED"})
RETRY_LATER_ISSUES = frozenset({"PREVIOUS_REQUEST_IN_PROGRESS", "ORDER_COMPLETION_IN_PROGRESS", "RATE_LIMIT_REACHED"})


def _paypal_kind(status: int, issue: str) -> ErrorKind:
    if issue in RETRY_LATER_ISSUES:
        return ErrorKind.RETRY_LATER
    if issue in NEEDS_ACTION_ISSUES:
        return ErrorKind.NEEDS_ACTION
    if issue in DECLINE_ISSUES:
        return ErrorKind.DECLINED
    return kind_of_status(status)


class _Expected(Exception):
    """An issue the caller named as one it handles (`_call(..., expect=...)`)."""

    def __init__(self, issue: str):
        super().__init__(issue)
        self.issue = issue


@metrics.timed_provider_call("paypal")
def _call(fn: Callable[[dict[str, Any]], Any], options: dict[str, Any], *,
          expect: frozenset[str] = frozenset()) -> PayPalJSON:
    """One SDK call; PayPal's errors by kind (payments.gateways.base), or `_Expected` for
    an issue in `expect`."""
    try:
        return _body(fn(options))
    except ApiException as exc:
        status = getattr(exc, "response_code", None) or 0
        issue = _issue(getattr(exc, "response", None))
        if issue in expect:
            raise _Expected(issue) from exc
        kind = _paypal_kind(status, issue)
        code = (issue or f"http_{status}").lower()
        message = f"PayPal declined it ({issue})." if kind == ErrorKind.DECLINED else None
        raise provider_error(kind, provider="PayPal", detail=f"{status} {issue}", code=code, message=message) from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise GatewayUnavailable(f"PayPal did not answer: {type(exc).__name__}") from exc


def _issue(response: Any) -> str:
    try:
        body = json.loads(response.text)
    except (AttributeError, TypeError, ValueError):
        return ""
    if not isinstance(body, dict):
        return ""
    details = body.get("details") or [{}]
    return str(details[0].get("issue") or body.get("name") or "")


class PayPalGateway:
    provider = Provider.PAYPAL
    refund_key_lifetime = REFUND_KEY_LIFETIME

    def start_checkout(self, payment: Payment, *, description: str, success_url: str, cancel_url: str) -> CheckoutStarted:
        order = _call(client().orders.create_order, {
            "paypal_request_id": payment.idempotency_key,
            "prefer": "return=representation",
            "body": {
                "intent": "CAPTURE",
                "purchase_units": [{
                    "reference_id": str(payment.pk),
                    "custom_id": str(payment.pk),
                    "description": description[:127],
                    "amount": {"currency_code": payment.currency, "value": paypal_amount(payment.amount, payment.currency)},
                }],
                "payment_source": {"paypal": {"experience_context": {
                    "return_url": success_url, "cancel_url": cancel_url, "user_action": "PAY_NOW",
                    "shipping_preference": "NO_SHIPPING", "brand_name": settings.PORTAL_BRAND,
                }}},
            },
        })
        link = next((lk["href"] for lk in order.get("links") or [] if lk.get("rel") in ("payer-action", "approve")), None)
        if link is None:  # the links are optional in PayPal's spec: no page to send the customer to
            raise GatewayUnavailable(f"PayPal returned order {order.get('id')} without its approval page.")
        return CheckoutStarted(checkout_id=order["id"], redirect_url=link)

    def capture(self, payment: Payment) -> PaymentSnapshot:
        """Capture an approved order. Safe to call again: the same request id replays
        PayPal's first answer, and an order captured already is read back."""
        try:
            order = _call(client().orders.capture_order, {
                "id": payment.provider_checkout_id,
                "paypal_request_id": f"{payment.idempotency_key}:capture",
                "prefer": "return=representation",
            }, expect=frozenset({"ORDER_ALREADY_CAPTURED"}))
        except _Expected:
            order = _call(client().orders.get_order, {"id": payment.provider_checkout_id})
        except GatewayActionRequired:
            return PaymentSnapshot(status=PaymentStatus.REQUIRES_ACTION)  # the buyer has not approved (yet)
        except GatewayDeclined as exc:
            # INSTRUMENT_DECLINED and the like: this attempt failed; the buyer may approve
            # the order again with another funding source.
            return PaymentSnapshot(status=PaymentStatus.FAILED, failure_code=exc.code, failure_message=exc.message)
        # Retry later (409 PREVIOUS_REQUEST_IN_PROGRESS, 5xx) and our bugs propagate: the
        # task retries the same PayPal-Request-Id, or staff look.
        return self.snapshot_from_order(order)

    def expire_checkout(self, payment: Payment) -> PaymentSnapshot:
        """A newer checkout supersedes this order. Orders v2 has no call that voids an
        order the buyer has not approved: it is left to lapse (PayPal drops an unapproved
        order after its validity), and ours is canceled, so an approval that comes later
        is never captured (`paypal_capture_task`, the return page and reconciliation
        capture only open payments) and takes no money. An order approved or captured
        already is read as it stands (and an approved one captured): the buyer paid."""
        if not payment.provider_checkout_id:
            return PaymentSnapshot(status=PaymentStatus.CANCELED)
        order = _call(client().orders.get_order, {"id": payment.provider_checkout_id})
        if order.get("status") in ("CREATED", "SAVED", "PAYER_ACTION_REQUIRED", "VOIDED"):
            return PaymentSnapshot(status=PaymentStatus.CANCELED)
        return self.capture(payment) if order.get("status") == "APPROVED" else self.snapshot_from_order(order)

    def snapshot(self, payment: Payment) -> PaymentSnapshot | None:
        if not payment.provider_checkout_id:
            return None
        order = _call(client().orders.get_order, {"id": payment.provider_checkout_id})
        if order.get("status") == "APPROVED":
            return self.capture(payment)
        return self.snapshot_from_order(order)

    @staticmethod
    def snapshot_from_order(order: PayPalJSON) -> PaymentSnapshot:
        captures = [c for u in order.get("purchase_units", []) for c in (u.get("payments") or {}).get("captures", [])]
        if captures:
            return PayPalGateway.snapshot_from_capture(captures[0])
        return PaymentSnapshot(status=ORDER_STATUS.get(order.get("status", ""), PaymentStatus.REQUIRES_ACTION))

    @staticmethod
    def snapshot_from_capture(capture: PayPalJSON) -> PaymentSnapshot:
        status = CAPTURE_STATUS.get(capture.get("status", ""), PaymentStatus.PROCESSING)
        amount = capture.get("amount") or {}
        return PaymentSnapshot(
            status=status, provider_payment_id=capture["id"],
            failure_code=(capture.get("status_details") or {}).get("reason", "").lower()
            if status == PaymentStatus.FAILED else "",
            amount=Decimal(amount["value"]) if amount.get("value") else None, currency=amount.get("currency_code", ""),
        )

    def refund(self, refund: Refund) -> RefundSnapshot:
        result = _call(client().payments.refund_captured_payment, {
            "capture_id": refund.payment.provider_payment_id,
            "paypal_request_id": refund.idempotency_key,
            "prefer": "return=representation",
            "body": {
                "amount": {"currency_code": refund.currency, "value": paypal_amount(refund.amount, refund.currency)},
                "custom_id": str(refund.pk),
                # PayPal's pattern is `^.*$` (one line), 1-255 characters; the service requires a reason.
                "note_to_payer": " ".join(refund.reason.split())[:255],
            },
        })
        return self.refund_snapshot(result, fallback_amount=refund.amount, fallback_currency=refund.currency)

    def refund_lookup(self, refund: Refund) -> RefundSnapshot | None:
        """By PayPal's refund id when we know it (show refund details); else among the
        order's refunds (its purchase unit's payment collection), the one carrying our
        id as `custom_id`."""
        if refund.provider_refund_id:
            return self.refund_by_id(refund.provider_refund_id)
        order_id = refund.payment.provider_checkout_id
        if not order_id:
            return None
        order = _call(client().orders.get_order, {"id": order_id})
        for unit in order.get("purchase_units") or []:
            for r in (unit.get("payments") or {}).get("refunds") or []:
                if r.get("custom_id") == str(refund.pk):
                    return self.refund_snapshot(r, fallback_amount=refund.amount, fallback_currency=refund.currency)
        return None

    def refund_by_id(self, refund_id: str) -> RefundSnapshot:
        return self.refund_snapshot(_call(client().payments.get_refund, {"refund_id": refund_id}))

    @staticmethod
    def refund_snapshot(r: PayPalJSON, *, fallback_amount: Decimal | None = None,
                        fallback_currency: str = "") -> RefundSnapshot:
        amount = r.get("amount") or {}
        value = Decimal(amount["value"]) if amount.get("value") else fallback_amount
        if value is None:
            raise ValueError(f"PayPal refund {r['id']} came without its amount.")
        ours = r.get("custom_id")
        return RefundSnapshot(
            provider_refund_id=r["id"], status=REFUND_STATUS.get(r.get("status", ""), RefundStatus.PENDING),
            amount=value,
            currency=amount.get("currency_code") or fallback_currency,
            our_refund_id=int(ours) if ours and str(ours).isdigit() else None,
            failure_message=(r.get("status_details") or {}).get("reason", "") if r.get("status") == "FAILED" else "",
        )

    # --- webhooks: the REST API directly; the SDK has no notifications API --------

    def verify_webhook(self, *, headers: Mapping[str, str], raw_body: bytes) -> bool:
        """PayPal's verify-webhook-signature. The event is spliced in as the raw bytes
        received: PayPal's CRC covers them, and re-serialized JSON would not match."""
        fields = {
            "auth_algo": headers.get("PAYPAL-AUTH-ALGO", ""),
            "cert_url": headers.get("PAYPAL-CERT-URL", ""),
            "transmission_id": headers.get("PAYPAL-TRANSMISSION-ID", ""),
            "transmission_sig": headers.get("PAYPAL-TRANSMISSION-SIG", ""),
            "transmission_time": headers.get("PAYPAL-TRANSMISSION-TIME", ""),
            "webhook_id": settings.PAYPAL_WEBHOOK_ID,
        }
        if not all(fields.values()):
            return False
        body = json.dumps(fields)[:-1].encode() + b', "webhook_event": ' + raw_body.strip() + b"}"
        try:
            response = requests.post(
                f"{api_base()}/v1/notifications/verify-webhook-signature",
                data=body,
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {self._access_token()}"},
                timeout=float(settings.PAYMENTS_PROVIDER_TIMEOUT),
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise GatewayUnavailable(f"PayPal did not answer: {type(exc).__name__}")
        if response.status_code >= 500:
            raise GatewayUnavailable(f"PayPal failed ({response.status_code}).")
        return response.status_code == 200 and response.json().get("verification_status") == "SUCCESS"

    def _access_token(self) -> str:
        auth = client().oauth_2
        if not auth.is_valid():
            raise GatewayUnavailable("PayPal did not issue an access token.")
        return auth._o_auth_token.access_token
