"""PayPal through its current server SDK (`paypal-server-sdk`): Orders v2 create and
capture, capture refunds, all with `PayPal-Request-Id` built from our row ids.

Where the SDK falls short we call PayPal's REST API with `requests`, and only there:
the SDK has no webhook API, so verify-webhook-signature is a direct call (see
`verify_webhook`). It reuses the SDK's OAuth token.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

import requests
from django.conf import settings
from paypalserversdk.configuration import Configuration, Environment
from paypalserversdk.exceptions.api_exception import ApiException
from paypalserversdk.http.auth.o_auth_2 import ClientCredentialsAuthCredentials
from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient

from payments.gateways.base import (
    CheckoutStarted,
    GatewayDeclined,
    GatewayUnavailable,
    PaymentSnapshot,
    RefundSnapshot,
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
                 "FAILED": RefundStatus.FAILED, "CANCELLED": RefundStatus.FAILED}


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


def _call(fn: Callable[[dict[str, Any]], Any], options: dict[str, Any]) -> PayPalJSON:
    try:
        return _body(fn(options))
    except ApiException as exc:
        status = getattr(exc, "response_code", None) or 0
        if status >= 500 or status in (408, 429):
            raise GatewayUnavailable(f"PayPal failed ({status}).")
        detail = _issue(getattr(exc, "response", None))
        raise GatewayDeclined(f"PayPal refused the request: {detail or status}.", code=(detail or "paypal_error").lower())
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise GatewayUnavailable(f"PayPal did not answer: {type(exc).__name__}")


def _issue(response: Any) -> str:
    try:
        body = json.loads(response.text)
    except (AttributeError, TypeError, ValueError):
        return ""
    details = body.get("details") or [{}]
    return details[0].get("issue") or body.get("name") or ""


class PayPalGateway:
    provider = Provider.PAYPAL

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
            })
        except GatewayDeclined as exc:
            if exc.code == "order_already_captured":
                order = _call(client().orders.get_order, {"id": payment.provider_checkout_id})
            elif exc.code == "order_not_approved":
                return PaymentSnapshot(status=PaymentStatus.REQUIRES_ACTION)
            else:
                return PaymentSnapshot(status=PaymentStatus.FAILED, failure_code=exc.code, failure_message=exc.message)
        return self.snapshot_from_order(order)

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
