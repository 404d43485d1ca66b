"""Thin tasks: ids in, one service call, safe to run twice (acks_late is global)."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.core.mail import mail_admins

from core.errors import Conflict
from core.money import format_money
from core.tasks import RetryPolicy
from payments import dunning, services
from payments.gateways import card_gateway_for
from payments.gateways.base import GatewayUnavailable
from payments.models import Flow, Payment, PaymentMethod, PaymentStatus, Provider, Purpose

logger = logging.getLogger(__name__)
# Unknown outcomes (timeouts) and answers that ask us to wait (409 a request with this
# key in progress, 429, 5xx) are retried with backoff; the idempotency key makes each
# retry the same provider operation. 8 retries from 30 s doubling to at most 30 min end
# within about 3 hours, well inside the 24 hours Stripe keeps a key; after that the
# reconciler sends an off-session charge again until the key is 23 hours old.
# A decline or an error of ours (GatewayIntegrationError) is never retried blindly.
RETRY: RetryPolicy = {"autoretry_for": (GatewayUnavailable, OSError), "retry_backoff": 30, "retry_backoff_max": 1800,
         "max_retries": 8}


@shared_task(name="payments.payment_succeeded", soft_time_limit=60, time_limit=90)
def payment_succeeded_task(payment_id: int) -> None:
    payment = Payment.objects.get(pk=payment_id)
    if payment.invoice_id:
        dunning.dunning_close_if_settled(invoice_id=payment.invoice_id)


@shared_task(name="payments.payment_failed", soft_time_limit=60, time_limit=90)
def payment_failed_task(payment_id: int) -> None:
    payment = Payment.objects.get(pk=payment_id)
    if payment.status != PaymentStatus.FAILED:
        return  # it succeeded after all
    message = payment.failure_message or payment.failure_code or "payment failed"
    if payment.credits_topup_id:
        from credits.services import auto_topup_failed

        try:
            auto_topup_failed(topup_id=payment.credits_topup_id, error=message, retryable=True)
        except Conflict:
            pass  # the top-up succeeded meanwhile
    elif payment.purpose == Purpose.INVOICE and payment.invoice_id is not None and payment.flow == Flow.OFF_SESSION:
        dunning.dunning_record_failure(invoice_id=payment.invoice_id, attempt=payment.dunning_attempt or 0,
                                       message=message)


@shared_task(name="payments.payment_charge", soft_time_limit=60, time_limit=90, **RETRY)
def payment_charge_task(payment_id: int) -> None:
    """Charge an off-session payment again, with its own key, after the provider asked us to wait."""
    services.payment_charge_saved_method(payment_id=payment_id)


@shared_task(name="payments.payment_action_required", soft_time_limit=60, time_limit=90)
def payment_action_required_task(payment_id: int) -> None:
    from payments import notify

    notify.action_required_email(payment_id=payment_id)


@shared_task(name="payments.payment_provider_error", soft_time_limit=60, time_limit=90)
def payment_provider_error_task(payment_id: int, provider_code: str) -> None:
    from payments import notify

    notify.provider_error_staff_email(payment_id=payment_id, provider_code=provider_code)


@shared_task(name="payments.payment_disputed", soft_time_limit=60, time_limit=90)
def payment_disputed_task(payment_id: int) -> None:
    payment = Payment.objects.select_related("organization").get(pk=payment_id)
    mail_admins(f"Dispute on payment {payment.pk}",
                f"{payment.organization} disputed payment {payment.pk} ({format_money(payment.amount, payment.currency)}) "
                f"at {payment.get_provider_display()}: {payment.dispute_reason}. Respond in the provider's dashboard.")


@shared_task(name="payments.payment_amount_mismatch", soft_time_limit=60, time_limit=90)
def payment_amount_mismatch_task(payment_id: int, expected: str, reported: str) -> None:
    payment = Payment.objects.select_related("organization").get(pk=payment_id)
    mail_admins(f"Payment {payment.pk}: the provider reports another amount",
                f"{payment.get_provider_display()} reports {reported} for payment {payment.pk} of {expected} "
                f"({payment.organization}). It was recorded as {format_money(payment.amount, payment.currency)}; "
                f"check it against the provider's dashboard.")


@shared_task(name="payments.refund_submit", soft_time_limit=60, time_limit=90, **RETRY)
def refund_submit_task(refund_id: int) -> None:
    services.refund_submit(refund_id=refund_id)


@shared_task(name="payments.paypal_capture", soft_time_limit=60, time_limit=90, **RETRY)
def paypal_capture_task(payment_id: int) -> None:
    from payments.gateways.paypal_gateway import PayPalGateway

    payment = Payment.objects.get(pk=payment_id, provider=Provider.PAYPAL)
    if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED, PaymentStatus.CANCELED):
        return
    services.payment_apply_snapshot(payment_id=payment.pk, snapshot=PayPalGateway().capture(payment))


@shared_task(name="payments.payment_method_detach", soft_time_limit=60, time_limit=90, **RETRY)
def payment_method_detach_task(method_id: int) -> None:
    method = PaymentMethod.objects.get(pk=method_id)
    card_gateway_for(method.provider).detach(method)



@shared_task(name="payments.autopay_invoice", soft_time_limit=60, time_limit=90, **RETRY)
def autopay_invoice_task(invoice_id: int, attempt: int = 0) -> None:
    dunning.autopay_charge(invoice_id=invoice_id, attempt=attempt)


@shared_task(name="payments.autopay_due", soft_time_limit=120, time_limit=180)
def autopay_due_task() -> int:
    due = dunning.autopay_candidates()
    for invoice_id in due:
        autopay_invoice_task.delay(invoice_id, 0)
    return len(due)


@shared_task(name="payments.dunning_due", soft_time_limit=120, time_limit=180)
def dunning_due_task() -> int:
    due = dunning.dunning_due()
    for invoice_id, attempt in due:
        autopay_invoice_task.delay(invoice_id, attempt)
    return len(due)


@shared_task(name="payments.reconcile", soft_time_limit=600, time_limit=660)
def reconcile_task() -> str:
    from payments.reconcile import reconcile

    return reconcile().summary()


@shared_task(name="payments.receipt_email", bind=True, max_retries=5, default_retry_delay=120, soft_time_limit=120,
             time_limit=180)
def receipt_email_task(self: Task, receipt_id: int) -> None:
    """Render the receipt's PDF once and email it once (payments.receipts)."""
    from payments import receipts

    try:
        receipts.receipt_send_email(receipt_id=receipt_id)
    except OSError as exc:  # storage, SMTP and network trouble are transient
        raise self.retry(exc=exc) from exc
