"""Stripe through the official `stripe` library (StripeClient, the v1 namespace).

Hosted pages only: Checkout Sessions for payments and for saving a card (setup mode), so
card numbers never reach us. Off-session PaymentIntents charge a saved card. Every
creating call carries an idempotency key built from our row id.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction

from core import metrics
from payments.gateways.base import (
    CheckoutStarted,
    ErrorKind,
    GatewayActionRequired,
    GatewayDeclined,
    GatewayUnavailable,
    PaymentSnapshot,
    RefundSnapshot,
    SavedMethod,
    kind_of_status,
    provider_error,
)
from payments.gateways.currencies import from_stripe_amount, stripe_amount
from payments.models import (
    Payment,
    PaymentMethod,
    PaymentStatus,
    Provider,
    ProviderCustomer,
    Refund,
    RefundStatus,
)

if TYPE_CHECKING:
    from stripe.params import (
        CustomerCreateParams,
        EventListParams,
        PaymentIntentConfirmParams,
        PaymentIntentCreateParams,
        RefundCreateParams,
        RefundListParams,
        RefundRetrieveParams,
        SetupIntentRetrieveParams,
    )
    from stripe.params.checkout import SessionCreateParams

    from accounts.models import Organization

PI_STATUS = {
    "succeeded": PaymentStatus.SUCCEEDED,
    "processing": PaymentStatus.PROCESSING,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "requires_confirmation": PaymentStatus.REQUIRES_ACTION,
    "requires_payment_method": PaymentStatus.REQUIRES_ACTION,
    "requires_capture": PaymentStatus.PROCESSING,
    "canceled": PaymentStatus.CANCELED,
}
REFUND_STATUS = {
    "succeeded": RefundStatus.SUCCEEDED,
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.REQUIRES_ACTION,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.CANCELED,
}
# Stripe prunes idempotency keys once they are at least 24 hours old; stay inside that.
KEY_LIFETIME = timedelta(hours=23)


class _MeteredRequestsClient(stripe.RequestsClient):
    """Stripe's own HTTP client; each request (each retry too) counted and timed (core.metrics)."""

    def request(self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None,
                **kwargs: Any) -> Any:
        with metrics.provider_call("stripe") as call:
            content, call.status, answer_headers = super().request(method, url, headers, post_data, **kwargs)
        return content, call.status, answer_headers


@lru_cache(maxsize=4)
def _client(api_key: str, api_base: str, timeout: float, retries: int) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base},
        max_network_retries=retries,
        http_client=_MeteredRequestsClient(timeout=timeout),
    )


def client() -> stripe.StripeClient:
    return _client(
        settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE,
        float(settings.PAYMENTS_PROVIDER_TIMEOUT), int(settings.PAYMENTS_PROVIDER_MAX_RETRIES),
    )


# Answers to a well-formed request that refuse it for a business reason (a refund of a
# charge refunded or disputed already, a balance too low to pay it back): declines.
REFUSAL_CODES = frozenset({"charge_already_refunded", "charge_disputed", "balance_insufficient",
                           "refund_disputed_payment"})
# Stripe's 409s (another request with this key, or on this object, is in progress) and
# its other answers that say "come back".
RETRY_LATER_CODES = frozenset({"idempotency_key_in_use", "lock_timeout", "rate_limit"})
NEEDS_ACTION_CODES = frozenset({"authentication_required"})


def _stripe_kind(exc: stripe.StripeError) -> ErrorKind:
    if isinstance(exc, stripe.CardError):
        declined = (exc.error.decline_code if exc.error else None) or ""
        return ErrorKind.NEEDS_ACTION if {exc.code, declined} & NEEDS_ACTION_CODES else ErrorKind.DECLINED
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or exc.code in RETRY_LATER_CODES:
        return ErrorKind.RETRY_LATER
    if exc.code in REFUSAL_CODES:
        return ErrorKind.DECLINED
    # What is left goes by status: 409/429/5xx retry later; IdempotencyError (a key
    # reused with other parameters), 400/404 invalid requests, 401/403: ours to fix.
    return kind_of_status(exc.http_status or 0)


@contextmanager
def stripe_errors() -> Iterator[None]:
    """Stripe's errors by kind (payments.gateways.base): declined, needs action, retry
    later, our bug. A context, not a wrapper taking the SDK method and its arguments:
    the call stays a plain SDK call with its typed parameter dict, which mypy checks
    against the API version the pinned SDK targets."""
    try:
        yield
    except stripe.StripeError as exc:
        kind = _stripe_kind(exc)
        code = exc.code or ("card_declined" if isinstance(exc, stripe.CardError)
                            else "idempotency_error" if isinstance(exc, stripe.IdempotencyError)
                            else type(exc).__name__)
        detail = f"{exc.http_status or 'no answer'}: {exc.user_message or exc}"
        if kind == ErrorKind.NEEDS_ACTION:
            raise GatewayActionRequired(
                "Your bank asks you to confirm this payment.", code=code,
                provider_payment_id=_error_intent(exc).get("id", "")) from exc
        if kind == ErrorKind.DECLINED:
            raise GatewayDeclined(exc.user_message or "The card was declined.", code=code) from exc
        raise provider_error(kind, provider="Stripe", detail=detail, code=code) from exc


def _error_intent(exc: BaseException | None) -> dict[str, Any]:
    """The PaymentIntent Stripe sends with a card error on a confirm, or {}."""
    body = getattr(exc, "json_body", None) or {}
    return (body.get("error") or {}).get("payment_intent") or {}


def _plain(obj: stripe.StripeObject | dict[str, Any]) -> dict[str, Any]:
    """Stripe's objects are not dicts in v16; webhooks give dicts. Work on dicts."""
    return obj.to_dict() if hasattr(obj, "to_dict") else obj


def _metadata(payment: Payment) -> dict[str, str]:
    return {"payment_id": str(payment.pk), "organization_id": str(payment.organization_id), "purpose": payment.purpose}


class _SessionNotOpen(Exception):
    """Stripe refused to expire a Checkout Session that is no longer open."""


def _started(session: stripe.checkout.Session) -> CheckoutStarted:
    if not session.url:  # hosted sessions always have one
        raise GatewayUnavailable(f"Stripe returned checkout session {session.id} without its page.")
    return CheckoutStarted(checkout_id=session.id, redirect_url=session.url)


class StripeGateway:
    provider = Provider.STRIPE
    refund_key_lifetime = KEY_LIFETIME

    # --- customers and saved cards -----------------------------------------------

    def customer_id(self, organization: Organization) -> str:
        existing = ProviderCustomer.objects.filter(organization=organization, provider=self.provider).first()
        if existing:
            return existing.customer_id
        params: CustomerCreateParams = {
            "name": organization.legal_name or organization.name,
            "metadata": {"organization_id": str(organization.pk)},
        }
        if organization.billing_email:
            params["email"] = organization.billing_email
        with stripe_errors():
            customer = client().v1.customers.create(
                params, {"idempotency_key": f"customer:organization:{organization.pk}"})
        try:
            with transaction.atomic():
                ProviderCustomer.objects.create(organization=organization, provider=self.provider, customer_id=customer.id)
        except IntegrityError:
            pass  # a concurrent request saved it; the idempotency key made it the same customer
        return ProviderCustomer.objects.get(organization=organization, provider=self.provider).customer_id

    def start_setup(self, organization: Organization, *, success_url: str, cancel_url: str) -> CheckoutStarted:
        params: SessionCreateParams = {
            "mode": "setup",
            "currency": organization.currency.lower(),
            "customer": self.customer_id(organization),
            "metadata": {"organization_id": str(organization.pk)},
            "setup_intent_data": {"metadata": {"organization_id": str(organization.pk)}},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        with stripe_errors():
            session = client().v1.checkout.sessions.create(params)
        return _started(session)

    def saved_method_from_setup_intent(self, setup_intent_id: str) -> SavedMethod:
        params: SetupIntentRetrieveParams = {"expand": ["payment_method"]}
        with stripe_errors():
            si = _plain(client().v1.setup_intents.retrieve(setup_intent_id, params))
        return self._method(si["payment_method"], si.get("customer"))

    def saved_method(self, method_id: str) -> SavedMethod:
        with stripe_errors():
            pm = client().v1.payment_methods.retrieve(method_id)
        return self._method(pm, None)

    @staticmethod
    def _method(pm: stripe.PaymentMethod | dict[str, Any], customer: str | None) -> SavedMethod:
        pm = _plain(pm)
        card = pm.get("card") or {}
        return SavedMethod(
            provider_method_id=pm["id"], provider_customer_id=pm.get("customer") or customer or "",
            brand=card.get("brand", ""), last4=card.get("last4", ""),
            exp_month=card.get("exp_month"), exp_year=card.get("exp_year"),
        )

    def detach(self, method: PaymentMethod) -> None:
        with stripe_errors():
            client().v1.payment_methods.detach(method.provider_method_id)

    # --- payments -----------------------------------------------------------------

    def start_checkout(self, payment: Payment, *, description: str, success_url: str, cancel_url: str) -> CheckoutStarted:
        params: SessionCreateParams = {
            "mode": "payment",
            "customer": self.customer_id(payment.organization),
            "client_reference_id": str(payment.pk),
            "line_items": [{
                "quantity": 1,
                "price_data": {
                    "currency": payment.currency.lower(),
                    "unit_amount": stripe_amount(payment.amount, payment.currency),
                    "product_data": {"name": description},
                },
            }],
            # Our price, in our currency: with Adaptive Pricing (on by default in the dashboard)
            # Stripe would show and charge the customer's currency instead.
            "adaptive_pricing": {"enabled": False},
            "metadata": _metadata(payment),
            "payment_intent_data": {"metadata": _metadata(payment)},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        with stripe_errors():
            session = client().v1.checkout.sessions.create(params, {"idempotency_key": payment.idempotency_key})
        return _started(session)

    def expire_checkout(self, payment: Payment) -> PaymentSnapshot:
        """End a hosted checkout nobody finished, so it can never be paid (a newer checkout
        supersedes it): Stripe's `POST /v1/checkout/sessions/{id}/expire`. Stripe expires
        only an open session; one the customer completed meanwhile is refused (400, "Only
        Checkout Sessions with a status in ["open"] can be expired"), and is then read as
        it stands, so its payment is recorded rather than lost."""
        if not payment.provider_checkout_id:
            # The session's create was never answered: the customer never had its page.
            return PaymentSnapshot(status=PaymentStatus.CANCELED)
        try:
            with stripe_errors():
                try:
                    session = _plain(client().v1.checkout.sessions.expire(payment.provider_checkout_id))
                except stripe.InvalidRequestError as exc:
                    if exc.http_status != 400:
                        raise
                    raise _SessionNotOpen from exc  # not our bug: the customer got there first
        except _SessionNotOpen as refused:
            snapshot = self.snapshot(payment)
            if snapshot is None or snapshot.status == PaymentStatus.REQUIRES_ACTION:
                # Open, yet Stripe would not expire it: a refusal we do not understand.
                raise provider_error(ErrorKind.OUR_BUG, provider="Stripe", detail=str(refused.__cause__),
                                     code="checkout_session_expire_refused") from refused
            return snapshot
        if session.get("status") != "expired":
            raise GatewayUnavailable(f"Stripe did not expire checkout session {session.get('id')}.")
        return PaymentSnapshot(status=PaymentStatus.CANCELED)

    def charge_saved_method(self, payment: Payment) -> PaymentSnapshot:
        """Off-session: the customer is not present. A decline is a failed snapshot, not
        an exception; only an unknown outcome raises (retry with the same key)."""
        method = payment.payment_method
        if method is None:
            raise ValueError(f"Payment {payment.pk} has no saved method to charge.")
        params: PaymentIntentCreateParams = {
            "amount": stripe_amount(payment.amount, payment.currency),
            "currency": payment.currency.lower(),
            "customer": method.provider_customer_id or self.customer_id(payment.organization),
            "payment_method": method.provider_method_id,
            "off_session": True,
            "confirm": True,
            # The customer is not there to follow a redirect: without this, today's API
            # defaults (automatic payment methods) ask for a return_url and refuse the charge.
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "metadata": _metadata(payment),
        }
        try:
            with stripe_errors():
                pi = client().v1.payment_intents.create(params, {"idempotency_key": payment.idempotency_key})
        except GatewayDeclined as exc:
            return PaymentSnapshot(status=PaymentStatus.FAILED, failure_code=exc.code, failure_message=exc.message,
                                   provider_payment_id=_error_intent(exc.__cause__).get("id", ""))
        except GatewayActionRequired as exc:
            # Not a decline: the PaymentIntent waits for the customer (payments:confirm).
            return PaymentSnapshot(status=PaymentStatus.REQUIRES_ACTION, failure_code=exc.code,
                                   failure_message=exc.message, provider_payment_id=exc.provider_payment_id)
        return self.snapshot_from_intent(pi)

    def confirm_on_session(self, payment: Payment, *, return_url: str, attempt: int) -> str:
        """The customer is here to confirm an off-session charge their bank held for
        authentication: confirm the same PaymentIntent on-session with a `return_url`, so
        Stripe answers `next_action.redirect_to_url`, its own hosted authentication page
        (Stripe's documented manual 3-D Secure redirect; no Stripe.js, no card data
        here). Returns that page's address, or "" when nothing is left to do. `attempt`
        counts the customer's tries, so each gets its own key (`payment:{id}:confirm:{n}`)."""
        if not payment.provider_payment_id:
            raise ValueError(f"Payment {payment.pk} has no PaymentIntent to confirm.")
        with stripe_errors():
            pi = _plain(client().v1.payment_intents.retrieve(payment.provider_payment_id))
        if pi["status"] not in ("requires_action", "requires_payment_method", "requires_confirmation"):
            return ""
        redirect = ((pi.get("next_action") or {}).get("redirect_to_url") or {}).get("url")
        if pi["status"] == "requires_action" and redirect:
            return str(redirect)  # confirmed on-session already: the same page again
        params: PaymentIntentConfirmParams = {"return_url": return_url}
        if pi["status"] == "requires_payment_method" and payment.payment_method is not None:
            params["payment_method"] = payment.payment_method.provider_method_id
        with stripe_errors():
            confirmed = _plain(client().v1.payment_intents.confirm(
                payment.provider_payment_id, params, {"idempotency_key": f"{payment.idempotency_key}:confirm:{attempt}"}))
        if confirmed["status"] != "requires_action":
            return ""
        url = ((confirmed.get("next_action") or {}).get("redirect_to_url") or {}).get("url")
        if not url:
            raise GatewayUnavailable(f"Stripe did not give PaymentIntent {confirmed['id']} an authentication page.")
        return str(url)

    @staticmethod
    def snapshot_from_intent(pi: stripe.PaymentIntent | dict[str, Any]) -> PaymentSnapshot:
        pi = _plain(pi)
        error = pi.get("last_payment_error") or {}
        status = PI_STATUS.get(pi["status"], PaymentStatus.PROCESSING)
        if status == PaymentStatus.REQUIRES_ACTION and error:
            # A last error that asks for authentication waits for the customer; any other
            # (a decline) failed this attempt.
            needs_action = {error.get("code"), error.get("decline_code")} & NEEDS_ACTION_CODES
            status = PaymentStatus.REQUIRES_ACTION if needs_action else PaymentStatus.FAILED
        return PaymentSnapshot(
            status=status, provider_payment_id=pi["id"], provider_charge_id=pi.get("latest_charge") or "",
            failure_code=error.get("decline_code") or error.get("code") or "",
            failure_message=error.get("message") or "",
            # The intent's amount is in the currency it was created in (ours); a localised
            # payment's customer currency is in `presentment_details`, for information only.
            amount=from_stripe_amount(pi["amount"], pi["currency"]), currency=pi["currency"].upper(),
        )

    @staticmethod
    def session_amount(session: dict[str, Any]) -> tuple[Decimal | None, str]:
        """What a payment-mode Checkout Session charged, in our currency. A session Stripe
        localised (Adaptive Pricing) before 2025-03-31 carries the customer's currency in
        `currency` / `amount_total` and ours in `currency_conversion` (`source_currency`,
        `amount_total`); later ones keep ours in `currency` and the customer's in
        `presentment_details`."""
        conversion = session.get("currency_conversion") or {}
        if conversion.get("source_currency") and conversion.get("amount_total") is not None:
            amount, currency = conversion["amount_total"], conversion["source_currency"]
        else:
            amount, currency = session.get("amount_total"), session.get("currency") or ""
        if amount is None:
            return None, currency.upper()
        return from_stripe_amount(amount, currency), currency.upper()

    def snapshot(self, payment: Payment) -> PaymentSnapshot | None:
        """Ask Stripe where a payment stands (return pages and reconciliation)."""
        pi_id = payment.provider_payment_id
        if not pi_id and payment.provider_checkout_id:
            with stripe_errors():
                session = _plain(client().v1.checkout.sessions.retrieve(payment.provider_checkout_id))
            if session.get("status") == "expired":
                return PaymentSnapshot(status=PaymentStatus.CANCELED)
            pi_id = session.get("payment_intent") or ""
        if not pi_id:
            return None
        with stripe_errors():
            pi = client().v1.payment_intents.retrieve(pi_id)
        return self.intent_snapshot_for(payment, pi)

    def intent_snapshot_for(self, payment: Payment, pi: stripe.PaymentIntent | dict[str, Any]) -> PaymentSnapshot:
        """The intent's snapshot, in our currency. The intent of a Checkout Session Stripe
        localised before 2025-03-31 is in the customer's currency; its session says what
        that was in ours (`currency_conversion`), so it is asked."""
        snapshot = self.snapshot_from_intent(pi)
        if snapshot.amount is None or snapshot.currency == payment.currency or not payment.provider_checkout_id:
            return snapshot
        with stripe_errors():
            session = _plain(client().v1.checkout.sessions.retrieve(payment.provider_checkout_id))
        amount, currency = self.session_amount(session)
        return replace(snapshot, amount=amount, currency=currency) if amount is not None else snapshot

    # --- refunds ----------------------------------------------------------------------

    def refund(self, refund: Refund) -> RefundSnapshot:
        payment = refund.payment
        params: RefundCreateParams = {
            "payment_intent": payment.provider_payment_id,
            "amount": stripe_amount(refund.amount, refund.currency, charge=False),
            "metadata": {"refund_id": str(refund.pk), "payment_id": str(payment.pk)},
        }
        with stripe_errors():
            created = client().v1.refunds.create(params, {"idempotency_key": refund.idempotency_key})
        return self.refund_snapshot(created)

    def refund_lookup(self, refund: Refund) -> RefundSnapshot | None:
        """By Stripe's refund id when we know it; else among the PaymentIntent's refunds,
        the one whose metadata names our refund (we always send it)."""
        if refund.provider_refund_id:
            return self.refund_by_id(refund.provider_refund_id)
        payment = refund.payment
        if not payment.provider_payment_id:
            return None
        params: RefundListParams = {"payment_intent": payment.provider_payment_id, "limit": 100}
        with stripe_errors():
            for r in client().v1.refunds.list(params).auto_paging_iter():
                if (_plain(r).get("metadata") or {}).get("refund_id") == str(refund.pk):
                    return self.refund_snapshot(r)
        return None

    def refund_by_id(self, refund_id: str) -> RefundSnapshot:
        params: RefundRetrieveParams = {}
        with stripe_errors():
            return self.refund_snapshot(client().v1.refunds.retrieve(refund_id, params))

    def refunds_of_charge(self, charge_id: str) -> list[RefundSnapshot]:
        params: RefundListParams = {"charge": charge_id, "limit": 100}
        with stripe_errors():
            return [self.refund_snapshot(r) for r in client().v1.refunds.list(params).auto_paging_iter()]

    @staticmethod
    def refund_snapshot(r: stripe.Refund | dict[str, Any]) -> RefundSnapshot:
        r = _plain(r)
        ours = (r.get("metadata") or {}).get("refund_id")
        return RefundSnapshot(
            provider_refund_id=r["id"], status=REFUND_STATUS.get(r["status"], RefundStatus.PENDING),
            amount=from_stripe_amount(r["amount"], r["currency"]), currency=r["currency"].upper(),
            our_refund_id=int(ours) if ours and str(ours).isdigit() else None,
            failure_message=r.get("failure_reason") or "",
        )

    # --- reconciliation --------------------------------------------------------------

    def recent_events(self, *, since_epoch: int, types: list[str]) -> list[stripe.Event]:
        """Events since a moment, oldest first (Stripe lists newest first)."""
        params: EventListParams = {"created": {"gte": since_epoch}, "types": types, "limit": 100}
        with stripe_errors():
            events = list(client().v1.events.list(params).auto_paging_iter())
        return list(reversed(events))
