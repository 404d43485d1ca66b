"""Repair what missed or failed webhooks left behind.

1. Stripe's recent events of the types we handle are fetched and fed through the same
   store-once, process-once path as webhooks: events we already processed change nothing.
2. Stored events whose processing failed are processed again.
3. Payments still open after a grace period are compared with the provider (PaymentIntent,
   Checkout Session, PayPal order) and moved to what it says; an off-session charge whose
   answer was lost is sent again with its own key; checkouts nobody finished are
   canceled after `PAYMENTS_CHECKOUT_EXPIRY`.
4. Refunds still open (pending, requires_action) are moved to what the provider says:
   looked up by their provider id; one whose create was never answered is sent again
   with its own key only while the provider holds that key, after it looked for among the
   payment's refunds and, if not there, left for a person (an error here, flagged in the
   console). A refund is never created twice (services.refunds).
Safe to run at any time, as often as wanted.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from core.errors import DomainError
from payments import services, webhooks
from payments.gateways import gateway_for, stripe_configured
from payments.models import OPEN_REFUND_STATUSES, Flow, Payment, PaymentStatus, Provider, Refund, WebhookEvent
from payments.models import WebhookStatus as WS

logger = logging.getLogger(__name__)
GRACE = timedelta(minutes=5)  # leave fresh payments to their webhooks
# Stripe keeps idempotency keys for 24 hours (PayPal request ids for 6 by default, but
# PayPal off-session charges are not made here); stay well inside.
KEY_LIFETIME = timedelta(hours=23)
BATCH = 500


@dataclass
class ReconcileReport:
    events_fetched: int = 0
    events_processed: int = 0
    payments_checked: int = 0
    payments_changed: int = 0
    payments_canceled: int = 0
    refunds_checked: int = 0
    refunds_changed: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"events fetched={self.events_fetched} processed={self.events_processed}; "
                f"payments checked={self.payments_checked} changed={self.payments_changed} "
                f"canceled={self.payments_canceled}; refunds checked={self.refunds_checked} "
                f"changed={self.refunds_changed}; "
                f"errors={len(self.errors)}")


def reconcile(*, now: datetime | None = None, since: datetime | None = None) -> ReconcileReport:
    now = now or timezone.now()
    since = since or now - settings.PAYMENTS_RECONCILE_WINDOW
    report = ReconcileReport()
    if stripe_configured():
        _stripe_events(report, since)
    _failed_events(report)
    _open_payments(report, now)
    _pending_refunds(report, now)
    return report


def _stripe_events(report: ReconcileReport, since: datetime) -> None:
    from payments.gateways.stripe_gateway import StripeGateway

    try:
        events = StripeGateway().recent_events(since_epoch=int(since.timestamp()), types=webhooks.STRIPE_EVENT_TYPES)
    except DomainError as exc:
        report.errors.append(f"stripe events: {exc.message}")
        return
    for event in events:
        payload = json.loads(json.dumps(event.to_dict(for_json=True)))
        report.events_fetched += 1
        stored = webhooks.webhook_event_store(provider=Provider.STRIPE, event_id=payload["id"],
                                              event_type=payload["type"], payload=payload)
        if stored.processed_at is None:
            _process(report, stored.pk)


def _process(report: ReconcileReport, event_pk: int) -> None:
    try:
        event = webhooks.webhook_event_process(event_pk=event_pk)
    except Exception as exc:  # recorded on the event row; the next run tries again
        report.errors.append(f"event {event_pk}: {type(exc).__name__}: {exc}")
        return
    report.events_processed += event.processed_at is not None


def _failed_events(report: ReconcileReport) -> None:
    for pk in WebhookEvent.objects.filter(processed_at__isnull=True, status__in=[WS.FAILED, WS.RECEIVED]).order_by(
            "received_at").values_list("pk", flat=True)[:BATCH]:
        _process(report, pk)


def _open_payments(report: ReconcileReport, now: datetime) -> None:
    open_statuses = [PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION, PaymentStatus.PROCESSING]
    for payment in Payment.objects.filter(status__in=open_statuses, created_at__lt=now - GRACE).exclude(
            provider=Provider.MANUAL).select_related("payment_method").order_by("created_at")[:BATCH]:
        report.payments_checked += 1
        try:
            snapshot = None if payment.provider == Provider.SANDBOX else gateway_for(payment.provider).snapshot(payment)
            if snapshot is not None and snapshot.status != payment.status:
                after = services.payment_apply_snapshot(payment_id=payment.pk, snapshot=snapshot)
                report.payments_changed += after.status != payment.status
            elif snapshot is None and payment.flow == Flow.OFF_SESSION and payment.status == PaymentStatus.PENDING:
                _redrive_charge(report, payment, now)
            elif payment.created_at < now - settings.PAYMENTS_CHECKOUT_EXPIRY and payment.flow == Flow.CHECKOUT:
                after = services.payment_cancel(payment=payment, reason="Checkout not completed in time.")
                report.payments_canceled += after.status == PaymentStatus.CANCELED
        except DomainError as exc:
            report.errors.append(f"payment {payment.pk}: {exc.message}")


def _redrive_charge(report: ReconcileReport, payment: Payment, now: datetime) -> None:
    """An off-session charge whose answer was lost. Within the provider's key lifetime
    the same call with the same key is safe (it replays or charges once); after it, a
    repeat could charge again, so a person decides (the succeeded-event feed above has
    already caught the charges that went through)."""
    if payment.created_at < now - KEY_LIFETIME:
        report.errors.append(f"payment {payment.pk}: charge outcome unknown past the idempotency key's lifetime; "
                             f"check it at {payment.get_provider_display()} and cancel or settle it by hand")
        return
    after = services.payment_charge_saved_method(payment_id=payment.pk)
    report.payments_changed += after.status != payment.status


def _pending_refunds(report: ReconcileReport, now: datetime) -> None:
    for refund_id, status in Refund.objects.filter(status__in=OPEN_REFUND_STATUSES, created_at__lt=now - GRACE).order_by(
            "created_at").values_list("pk", "status")[:BATCH]:
        report.refunds_checked += 1
        try:
            after = services.refund_submit(refund_id=refund_id, now=now)
            report.refunds_changed += after.status != status
        except DomainError as exc:
            report.errors.append(f"refund {refund_id}: {exc.message}")
