"""The payment.* and dunning.step webhook events (webhooks.catalogue), emitted in the
transaction that moves the payment, the refund or the dunning case."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.money import round_money

if TYPE_CHECKING:
    from payments.models import DunningCase, Payment, Refund


def emit_payment(event_type: str, payment: Payment) -> None:
    from webhooks.services import emit

    emit(type=event_type, organization=payment.organization_id, data={
        "payment_id": payment.pk, "purpose": payment.purpose, "provider": payment.provider,
        "currency": payment.currency, "amount": str(round_money(payment.amount, payment.currency)),
        "invoice_id": payment.invoice_id, "failure_code": payment.failure_code,
    })


def emit_refund(refund: Refund, payment: Payment) -> None:
    from webhooks.services import emit

    emit(type="payment.refunded", organization=payment.organization_id, data={
        "refund_id": refund.pk, "payment_id": payment.pk, "currency": refund.currency,
        "amount": str(round_money(refund.amount, refund.currency)),
        "amount_refunded": str(round_money(payment.amount_refunded, payment.currency)),
        "fully_refunded": payment.amount_refunded == payment.amount,
    })


def emit_dunning_step(case: DunningCase, attempt: int) -> None:
    from webhooks.services import emit

    emit(type="dunning.step", organization=case.organization_id, data={
        "invoice_id": case.invoice_id, "attempt": attempt, "status": case.status,
        "next_retry_at": case.next_retry_at, "final_action": case.final_action or "",
        "message": case.last_failure,
    })
