"""Provider events: verified by the views, stored once, processed exactly once.

Exactly once, in any order, any number of times:
- the event row is inserted under a unique (provider, event id) index; a duplicate
  delivery, even a concurrent one, finds the existing row;
- processing locks that row, does nothing if `processed_at` is set, and sets it in the
  same transaction as the event's effects; a concurrent duplicate waits on the lock and
  then sees it processed;
- each handler moves the payment toward what the event says under the payment's own row
  lock (`payment_apply_snapshot`), so events about one payment serialize, and an older
  event arriving after a newer one changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from payments import services
from payments.gateways.base import PaymentSnapshot
from payments.gateways.currencies import from_stripe_amount
from payments.models import (
    SETTLED_STATUSES,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Provider,
    ProviderCustomer,
    WebhookEvent,
    WebhookStatus,
)

logger = logging.getLogger(__name__)

STRIPE_EVENT_TYPES = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
    "charge.dispute.closed",
    "setup_intent.succeeded",
    "payment_method.detached",
]


def webhook_event_store(*, provider: str, event_id: str, event_type: str, payload: dict) -> WebhookEvent:
    try:
        with transaction.atomic():
            return WebhookEvent.objects.create(provider=provider, event_id=event_id, event_type=event_type,
                                               payload=payload)
    except IntegrityError:
        WebhookEvent.objects.filter(provider=provider, event_id=event_id).update(deliveries=F("deliveries") + 1)
        return WebhookEvent.objects.get(provider=provider, event_id=event_id)


class MalformedEvent(ValueError):
    """An authentic event whose object lacks what its type promises (a field missing or
    of the wrong type): redelivery cannot fix it, so it is not a server error."""


def minor_units(value: object) -> int:
    """A provider's amount in minor units: a JSON integer, nothing else. int() would take
    "1050" and truncate 1050.5 (and True is an int to Python), so each is refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedEvent(f"An amount in minor units is an integer, not {value!r}.")
    return value


def webhook_event_process(*, event_pk: int) -> WebhookEvent:
    """Run the event's handler once. A failing handler rolls back its effects, marks the
    event failed and re-raises (the view answers 500, so the provider delivers again)."""
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.select_for_update().get(pk=event_pk)
            if event.processed_at is not None:
                return event
            handler = HANDLERS.get(event.provider, {}).get(event.event_type)
            if handler is not None:
                try:
                    handler(event.payload)
                except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
                    if isinstance(exc, MalformedEvent):
                        if str(exc).startswith(event.event_type):
                            raise
                        raise MalformedEvent(f"{event.event_type}: {exc}") from exc
                    raise MalformedEvent(f"{event.event_type}: {type(exc).__name__}: {exc}") from exc
            # Counted in SQL, not from the row read above: without the lock, concurrent
            # duplicates would each count, and the concurrency test would see it.
            WebhookEvent.objects.filter(pk=event.pk).update(
                status=WebhookStatus.PROCESSED if handler else WebhookStatus.IGNORED,
                attempts=F("attempts") + 1, processed_at=timezone.now(), last_error="")
            event.refresh_from_db()
            return event
    except Exception as exc:
        WebhookEvent.objects.filter(pk=event_pk, processed_at__isnull=True).update(
            status=WebhookStatus.FAILED, attempts=F("attempts") + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000])
        raise


def webhook_receive(*, provider: str, event_id: str, event_type: str, payload: dict) -> WebhookEvent:
    event = webhook_event_store(provider=provider, event_id=event_id, event_type=event_type, payload=payload)
    return webhook_event_process(event_pk=event.pk)


# --- finding our payment --------------------------------------------------------------


def _payment(provider: str, *, our_id: str | int | None = None, **provider_ids: str | None) -> Payment | None:
    """Our payment for an event: by the id we put in metadata, else by a provider id."""
    qs = Payment.objects.filter(provider=provider)
    if our_id and str(our_id).isdigit():
        found = qs.filter(pk=int(our_id)).first()
        if found:
            return found
    query = Q()
    for name, value in provider_ids.items():
        if value:
            query |= Q(**{name: value})
    return qs.filter(query).first() if query else None


def _unknown(kind: str, ident: object) -> None:
    # Events for payments that are not ours (another system on the same account) change nothing.
    logger.info("payments: %s %s matches no payment here; ignored", kind, ident)


# --- Stripe ------------------------------------------------------------------------------


def _stripe_checkout_completed(event: dict) -> None:
    session = event["data"]["object"]
    if session.get("mode") == "setup":
        _stripe_save_setup(session.get("setup_intent"), session.get("metadata") or {}, session.get("customer"))
        return
    meta = session.get("metadata") or {}
    payment = _payment(Provider.STRIPE, our_id=meta.get("payment_id") or session.get("client_reference_id"),
                       provider_checkout_id=session["id"])
    if payment is None:
        return _unknown("checkout session", session["id"])
    from payments.gateways.stripe_gateway import StripeGateway

    paid = session.get("payment_status") == "paid"
    conversion = session.get("currency_conversion") or {}
    for value in (session.get("amount_total"), conversion.get("amount_total")):
        if value is not None:
            minor_units(value)
    # In our currency even when Stripe localised the session (Adaptive Pricing).
    amount, currency = StripeGateway.session_amount(session)
    services.payment_apply_snapshot(payment_id=payment.pk, snapshot=PaymentSnapshot(
        status=PaymentStatus.SUCCEEDED if paid else PaymentStatus.PROCESSING,
        provider_payment_id=session.get("payment_intent") or "",
        amount=amount if paid else None, currency=currency,
    ))


def _stripe_checkout_async_failed(event: dict) -> None:
    """A delayed payment method (bank debit, transfer) paid nothing in the end: the
    session completed unpaid, and now its payment failed. Nothing was credited."""
    session = event["data"]["object"]
    meta = session.get("metadata") or {}
    payment = _payment(Provider.STRIPE, our_id=meta.get("payment_id") or session.get("client_reference_id"),
                       provider_checkout_id=session["id"])
    if payment is None:
        return _unknown("checkout session", session["id"])
    services.payment_apply_snapshot(payment_id=payment.pk, snapshot=PaymentSnapshot(
        status=PaymentStatus.FAILED, provider_payment_id=session.get("payment_intent") or "",
        failure_code="async_payment_failed", failure_message="The delayed payment did not go through.",
    ))


def _stripe_checkout_expired(event: dict) -> None:
    """Nobody finished the hosted page before it expired (24 hours by default)."""
    session = event["data"]["object"]
    meta = session.get("metadata") or {}
    if session.get("mode") != "payment":
        return
    payment = _payment(Provider.STRIPE, our_id=meta.get("payment_id") or session.get("client_reference_id"),
                       provider_checkout_id=session["id"])
    if payment is None:
        return _unknown("checkout session", session["id"])
    services.payment_apply_snapshot(payment_id=payment.pk, snapshot=PaymentSnapshot(status=PaymentStatus.CANCELED))


def _stripe_payment_intent(event: dict) -> None:
    from payments.gateways.stripe_gateway import StripeGateway

    pi = event["data"]["object"]
    payment = _payment(Provider.STRIPE, our_id=(pi.get("metadata") or {}).get("payment_id"),
                       provider_payment_id=pi["id"])
    if payment is None:
        return _unknown("payment intent", pi["id"])
    services.payment_apply_snapshot(payment_id=payment.pk, snapshot=StripeGateway().intent_snapshot_for(payment, pi))


def _stripe_charge_refunded(event: dict) -> None:
    from payments.gateways.stripe_gateway import StripeGateway

    charge = event["data"]["object"]
    payment = _payment(Provider.STRIPE, our_id=(charge.get("metadata") or {}).get("payment_id"),
                       provider_payment_id=charge.get("payment_intent"), provider_charge_id=charge["id"])
    if payment is None:
        return _unknown("charge", charge["id"])
    currency = charge["currency"].upper()
    if payment.status not in SETTLED_STATUSES and charge.get("paid"):
        # A refund can arrive before the success it follows: the charge says it was paid.
        services.payment_apply_snapshot(payment_id=payment.pk, snapshot=PaymentSnapshot(
            status=PaymentStatus.SUCCEEDED, provider_payment_id=charge.get("payment_intent") or "",
            provider_charge_id=charge["id"], amount=from_stripe_amount(minor_units(charge["amount"]), currency),
            currency=currency,
        ))
    # Current API versions do not embed the refunds in the charge: list them.
    for snapshot in StripeGateway().refunds_of_charge(charge["id"]):
        services.refund_apply_snapshot(payment_id=payment.pk, snapshot=snapshot)


def _stripe_refund(event: dict) -> None:
    """refund.created / refund.updated / refund.failed. Events come in any order and an
    older one may arrive last: the refund is read from Stripe as it stands now, and moved
    along REFUND_TRANSITIONS only."""
    from payments.gateways.stripe_gateway import StripeGateway

    refund = event["data"]["object"]
    payment = _payment(Provider.STRIPE, our_id=(refund.get("metadata") or {}).get("payment_id"),
                       provider_payment_id=refund.get("payment_intent"), provider_charge_id=refund.get("charge"))
    if payment is None:
        return _unknown("refund", refund["id"])
    services.refund_apply_snapshot(payment_id=payment.pk, snapshot=StripeGateway().refund_by_id(refund["id"]))


def _stripe_dispute(event: dict) -> None:
    dispute = event["data"]["object"]
    payment = _payment(Provider.STRIPE, provider_payment_id=dispute.get("payment_intent"),
                       provider_charge_id=dispute.get("charge"))
    if payment is None:
        return _unknown("dispute", dispute["id"])
    services.payment_mark_disputed(payment_id=payment.pk, reason=dispute.get("reason") or "dispute")


def _stripe_dispute_closed(event: dict) -> None:
    """A lost dispute is money taken back by the card's bank: it reverses the payment like
    a refund (recorded as one, keyed by the dispute id, so any number of deliveries apply
    it once). A won dispute changes nothing but the record."""
    from accounts.audit import audit_record

    dispute = event["data"]["object"]
    payment = _payment(Provider.STRIPE, provider_payment_id=dispute.get("payment_intent"),
                       provider_charge_id=dispute.get("charge"))
    if payment is None:
        return _unknown("dispute", dispute["id"])
    services.payment_mark_disputed(payment_id=payment.pk, reason=dispute.get("reason") or "dispute")
    status = dispute.get("status")
    if status == "lost":
        # The disputed amount can be the whole charge even after a partial refund; what
        # is reversed here is capped at what is left of the payment (the rest audited).
        currency = dispute["currency"].upper()
        services.refund_record_provider_reversal(
            payment_id=payment.pk, key=f"dispute:{dispute['id']}", currency=currency,
            amount=from_stripe_amount(minor_units(dispute["amount"]), currency),
            reason=f"Dispute lost ({dispute.get('reason') or 'no reason given'})",
        )
    else:  # each event is processed once (webhook_event_process), so this is written once
        audit_record("payment.dispute_closed", organization=payment.organization, obj=payment,
                     changes={"dispute": dispute["id"], "status": status})


def _stripe_setup_succeeded(event: dict) -> None:
    si = event["data"]["object"]
    _stripe_save_setup(si["id"], si.get("metadata") or {}, si.get("customer"))


def _stripe_save_setup(setup_intent_id: str | None, metadata: dict, customer: str | None) -> None:
    from accounts.models import Organization
    from payments.gateways.stripe_gateway import StripeGateway

    if not setup_intent_id:
        return
    org_id = metadata.get("organization_id")
    if not org_id and customer:
        org_id = ProviderCustomer.objects.filter(provider=Provider.STRIPE, customer_id=customer).values_list(
            "organization_id", flat=True).first()
    organization = Organization.objects.filter(pk=org_id).first() if org_id else None
    if organization is None:
        return _unknown("setup intent", setup_intent_id)
    saved = StripeGateway().saved_method_from_setup_intent(setup_intent_id)
    services.payment_method_save(organization=organization, provider=Provider.STRIPE, saved=saved)


def _stripe_method_detached(event: dict) -> None:
    pm = event["data"]["object"]
    method = PaymentMethod.objects.filter(provider=Provider.STRIPE, provider_method_id=pm["id"]).first()
    if method is not None:
        services.payment_method_detach(method=method, at_provider=False)


# --- PayPal ------------------------------------------------------------------------------


def _paypal_order_approved(event: dict) -> None:
    order = event["resource"]
    unit = (order.get("purchase_units") or [{}])[0]
    payment = _payment(Provider.PAYPAL, our_id=unit.get("custom_id"), provider_checkout_id=order["id"])
    if payment is None:
        return _unknown("order", order["id"])
    payment = services.payment_apply_snapshot(payment_id=payment.pk,
                                              snapshot=PaymentSnapshot(status=PaymentStatus.PROCESSING))
    if payment.status == PaymentStatus.PROCESSING:
        services.lifecycle._after_commit("payments.tasks.paypal_capture_task", payment.pk)


def _capture_payment(capture: dict) -> Payment | None:
    order_id = ((capture.get("supplementary_data") or {}).get("related_ids") or {}).get("order_id")
    return _payment(Provider.PAYPAL, our_id=capture.get("custom_id"), provider_payment_id=capture["id"],
                    provider_checkout_id=order_id)


def _paypal_capture(event: dict) -> None:
    from payments.gateways.paypal_gateway import PayPalGateway

    capture = event["resource"]
    payment = _capture_payment(capture)
    if payment is None:
        return _unknown("capture", capture["id"])
    services.payment_apply_snapshot(payment_id=payment.pk, snapshot=PayPalGateway.snapshot_from_capture(capture))


def _paypal_refunded(event: dict) -> None:
    """PAYMENT.CAPTURE.REFUNDED (completed), PAYMENT.REFUND.PENDING, PAYMENT.REFUND.FAILED.
    The refund is read from PayPal as it stands now (events come in any order), and moved
    along REFUND_TRANSITIONS only."""
    from payments.gateways.paypal_gateway import PayPalGateway

    refund = event["resource"]
    up = next((lk["href"] for lk in refund.get("links", []) if lk.get("rel") == "up"), "")
    capture_id = up.rstrip("/").rsplit("/", 1)[-1] if "/captures/" in up else ""
    payment = _payment(Provider.PAYPAL, provider_payment_id=capture_id)
    if payment is None:
        return _unknown("refund", refund["id"])
    if payment.status not in SETTLED_STATUSES:
        # The refund of a capture proves the capture completed.
        services.payment_apply_snapshot(payment_id=payment.pk, snapshot=PaymentSnapshot(
            status=PaymentStatus.SUCCEEDED, provider_payment_id=capture_id))
    services.refund_apply_snapshot(payment_id=payment.pk, snapshot=PayPalGateway().refund_by_id(refund["id"]))


def _paypal_dispute_payment(dispute: dict) -> Payment | None:
    for transaction_ in dispute.get("disputed_transactions") or []:
        capture_id = transaction_.get("seller_transaction_id")
        payment = capture_id and _payment(Provider.PAYPAL, provider_payment_id=capture_id)
        if payment:
            return payment
    return None


def _paypal_dispute_created(event: dict) -> None:
    dispute = event["resource"]
    payment = _paypal_dispute_payment(dispute)
    if payment is None:
        return _unknown("dispute", dispute.get("dispute_id", "?"))
    services.payment_mark_disputed(payment_id=payment.pk, reason=dispute.get("reason") or "dispute")


# PayPal's outcome codes (customer_disputes_v1.json, dispute_outcome) by what they do to
# the money we were paid. The merchant pays: the buyer won, or we accepted the claim.
# PayPal pays the buyer itself (a payout; amount_refunded is "what either the merchant or
# PayPal refunds"): nothing is taken from us, but whether it was is for a person to check.
PAYPAL_MERCHANT_PAYS = frozenset({"RESOLVED_BUYER_FAVOUR", "ACCEPTED"})
PAYPAL_NOTHING_TAKEN = frozenset({"RESOLVED_SELLER_FAVOUR", "CANCELED_BY_BUYER", "DENIED", "NONE"})


def _paypal_dispute_resolved(event: dict) -> None:
    """Resolved against us (the buyer's favour, or a claim we accepted): the money went
    back, like a refund keyed by the dispute id (applied once however often it is told),
    of what PayPal says it returned (`amount_refunded`; without it the dispute's amount),
    capped at what is left of the payment: after a partial refund that is only the rest.
    Resolved for us or withdrawn: recorded only. A payout by PayPal, or an outcome not in
    PayPal's list: recorded for a person, nothing reversed."""
    from accounts.audit import audit_record

    dispute = event["resource"]
    payment = _paypal_dispute_payment(dispute)
    if payment is None:
        return _unknown("dispute", dispute.get("dispute_id", "?"))
    services.payment_mark_disputed(payment_id=payment.pk, reason=dispute.get("reason") or "dispute")
    outcome = dispute.get("dispute_outcome") or {}
    code = outcome.get("outcome_code") or "NONE"
    if code in PAYPAL_MERCHANT_PAYS:
        amount = outcome.get("amount_refunded") or dispute.get("dispute_amount") or {}
        services.refund_record_provider_reversal(
            payment_id=payment.pk, key=f"dispute:{dispute['dispute_id']}", amount=Decimal(amount["value"]),
            currency=amount.get("currency_code") or payment.currency,
            reason=f"Dispute {'accepted' if code == 'ACCEPTED' else 'lost'} "
                   f"({dispute.get('reason') or 'no reason given'})",
        )
    elif code in PAYPAL_NOTHING_TAKEN:
        audit_record("payment.dispute_closed", organization=payment.organization, obj=payment,
                     changes={"dispute": dispute.get("dispute_id"), "outcome": code})
    else:
        logger.warning("payments: PayPal dispute %s of payment %s resolved %s: check who paid the buyer",
                       dispute.get("dispute_id"), payment.pk, code)
        audit_record("payment.dispute_needs_review", organization=payment.organization, obj=payment,
                     reason=f"PayPal resolved the dispute {code}; check at PayPal whether the money came from us",
                     changes={"dispute": dispute.get("dispute_id"), "outcome": code,
                              "amount_refunded": outcome.get("amount_refunded")})


# --- Sandbox --------------------------------------------------------------------------------


def _sandbox_checkout(event: dict) -> None:
    payment = Payment.objects.get(pk=event["payment_id"], provider=Provider.SANDBOX)
    if event["outcome"] == "succeeded":
        snapshot = PaymentSnapshot(status=PaymentStatus.SUCCEEDED, provider_payment_id=f"sbx_pay_{payment.pk}",
                                   amount=Decimal(event["amount"]), currency=event["currency"])
    else:
        snapshot = PaymentSnapshot(status=PaymentStatus.FAILED, failure_code="card_declined",
                                   failure_message="The sandbox card declined.")
    services.payment_apply_snapshot(payment_id=payment.pk, snapshot=snapshot)


HANDLERS: dict[str, dict[str, Callable[[dict], None]]] = {
    Provider.STRIPE: {
        "checkout.session.completed": _stripe_checkout_completed,
        # A delayed method's outcome: the session object now says paid, or the payment failed.
        "checkout.session.async_payment_succeeded": _stripe_checkout_completed,
        "checkout.session.async_payment_failed": _stripe_checkout_async_failed,
        "checkout.session.expired": _stripe_checkout_expired,
        "payment_intent.succeeded": _stripe_payment_intent,
        "payment_intent.payment_failed": _stripe_payment_intent,
        "charge.refunded": _stripe_charge_refunded,
        "refund.created": _stripe_refund,
        "refund.updated": _stripe_refund,
        "refund.failed": _stripe_refund,
        "charge.dispute.created": _stripe_dispute,
        # Evidence asked, under review, funds held or given back while it runs: the
        # payment is marked disputed; money moves for us only when it closes lost.
        "charge.dispute.updated": _stripe_dispute,
        "charge.dispute.funds_withdrawn": _stripe_dispute,
        "charge.dispute.funds_reinstated": _stripe_dispute,
        "charge.dispute.closed": _stripe_dispute_closed,
        "setup_intent.succeeded": _stripe_setup_succeeded,
        "payment_method.detached": _stripe_method_detached,
    },
    Provider.PAYPAL: {
        "CHECKOUT.ORDER.APPROVED": _paypal_order_approved,
        "PAYMENT.CAPTURE.COMPLETED": _paypal_capture,
        "PAYMENT.CAPTURE.PENDING": _paypal_capture,  # e.g. an eCheck: processing until it clears
        "PAYMENT.CAPTURE.DENIED": _paypal_capture,
        "PAYMENT.CAPTURE.DECLINED": _paypal_capture,
        "PAYMENT.CAPTURE.REFUNDED": _paypal_refunded,
        "PAYMENT.REFUND.PENDING": _paypal_refunded,
        "PAYMENT.REFUND.FAILED": _paypal_refunded,
        "CUSTOMER.DISPUTE.CREATED": _paypal_dispute_created,
        "CUSTOMER.DISPUTE.UPDATED": _paypal_dispute_created,  # waiting for a party, under review
        "CUSTOMER.DISPUTE.RESOLVED": _paypal_dispute_resolved,
    },
    Provider.SANDBOX: {"sandbox.checkout.completed": _sandbox_checkout},
}
