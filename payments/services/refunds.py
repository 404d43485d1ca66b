"""Refunds: asking for one, submitting it to the provider, applying the provider's answer.

Only a succeeded payment is refunded, and never beyond what is left of it after the
refunds already pending. The provider sees the refund's key (`refund:{id}`), so a
repeated submit is one refund; a refund made in the provider's dashboard is recorded
when its news arrives. The reversal of what the payment paid for
(`settlement.reverse_refund`) runs once, when the refund becomes `succeeded`, under the
payment's row lock.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiKey, User
from core.errors import Conflict, DomainError
from core.money import format_money
from payments import settlement
from payments.gateways import gateway_for
from payments.gateways.base import GatewayDeclined, RefundSnapshot
from payments.gateways.currencies import check_amount
from payments.models import SETTLED_STATUSES, Payment, Provider, Refund, RefundStatus
from payments.services.lifecycle import S, _after_commit, _lock, _money, _move


@transaction.atomic
def refund_request(
    *, payment: Payment, amount: Decimal | None, reason: str, actor: User | None = None,
    api_key: ApiKey | None = None,
) -> Refund:
    payment = _lock(payment.pk)
    if payment.status != S.SUCCEEDED:
        raise Conflict(f"Only a succeeded payment can be refunded; this one is {payment.get_status_display().lower()}.")
    if not reason or not reason.strip():
        raise DomainError("Say why the money is returned.", field="reason")
    pending = (payment.refunds.filter(status=RefundStatus.PENDING).aggregate(s=Sum("amount"))["s"] or Decimal("0"))
    available = payment.refundable_amount - pending
    amount = available if amount is None else _money(amount, payment.currency)
    if amount <= 0 or amount > available:
        raise DomainError(f"At most {format_money(available, payment.currency)} can be refunded.", field="amount")
    check_amount(payment.provider, amount, payment.currency, refund=True)  # the provider's rules, before the call
    refund = Refund.objects.create(payment=payment, organization=payment.organization, amount=amount,
                                   currency=payment.currency, reason=reason.strip(), requested_by=actor)
    audit_record("refund.requested", actor=actor, api_key=api_key, organization=payment.organization, obj=refund,
                 reason=reason, changes={"payment": payment.pk, "amount": amount})
    _after_commit("payments.tasks.refund_submit_task", refund.pk)
    return refund


def refund_submit(*, refund_id: int) -> Refund:
    """Ask the provider to return the money; the refund's key (`refund:{id}`) makes a
    repeated call one refund. Raises `GatewayUnavailable` when the outcome is unknown."""
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    if refund.status != RefundStatus.PENDING:
        return refund
    payment = refund.payment
    if payment.provider == Provider.MANUAL:
        # Money sent back by bank: staff record it here, nothing to call.
        snapshot = RefundSnapshot(provider_refund_id=f"bank:{refund.pk}", status=RefundStatus.SUCCEEDED,
                                  amount=refund.amount, currency=refund.currency, our_refund_id=refund.pk)
    else:
        try:
            snapshot = gateway_for(payment.provider).refund(refund)
        except GatewayDeclined as exc:
            snapshot = RefundSnapshot(provider_refund_id="", status=RefundStatus.FAILED, amount=refund.amount,
                                      currency=refund.currency, our_refund_id=refund.pk, failure_message=exc.message)
    if snapshot.our_refund_id is None:
        snapshot = RefundSnapshot(**{**snapshot.__dict__, "our_refund_id": refund.pk})
    return refund_apply_snapshot(payment_id=payment.pk, snapshot=snapshot)


@transaction.atomic
def refund_apply_snapshot(*, payment_id: int, snapshot: RefundSnapshot,
                          reason_if_new: str = "Refunded at the provider") -> Refund:
    """Apply what the provider says about one refund. A refund we did not ask for (made
    in the provider's dashboard) is recorded too. Its reversal runs once."""
    payment = _lock(payment_id)
    refund = None
    if snapshot.provider_refund_id:
        refund = payment.refunds.select_for_update().filter(provider_refund_id=snapshot.provider_refund_id).first()
    if refund is None and snapshot.our_refund_id:
        refund = payment.refunds.select_for_update().filter(pk=snapshot.our_refund_id).first()
    if refund is None:
        refund = Refund.objects.create(payment=payment, organization=payment.organization, amount=snapshot.amount,
                                       currency=snapshot.currency or payment.currency, reason=reason_if_new,
                                       provider_refund_id=snapshot.provider_refund_id)
        audit_record("refund.recorded_from_provider", organization=payment.organization, obj=refund,
                     changes={"payment": payment.pk, "amount": snapshot.amount})
    if snapshot.provider_refund_id and not refund.provider_refund_id:
        refund.provider_refund_id = snapshot.provider_refund_id
    if snapshot.status == RefundStatus.SUCCEEDED and refund.status != RefundStatus.SUCCEEDED:
        if payment.status not in SETTLED_STATUSES:
            raise Conflict(f"Payment {payment.pk} is {payment.status}; a refund needs its success first.")
        refund.status = RefundStatus.SUCCEEDED
        refund.succeeded_at = timezone.now()
        refund.save()
        settlement.reverse_refund(refund)
        payment.amount_refunded += refund.amount
        if payment.amount_refunded == payment.amount:
            _move(payment, S.REFUNDED)
        else:
            payment.save(update_fields=["amount_refunded", "updated_at"])
        audit_record("refund.succeeded", actor=refund.requested_by, organization=payment.organization, obj=refund,
                     reason=refund.reason, changes={"amount": refund.amount, "payment": payment.pk})
    elif snapshot.status == RefundStatus.FAILED and refund.status == RefundStatus.PENDING:
        refund.status = RefundStatus.FAILED
        refund.failure_message = snapshot.failure_message[:500]
        refund.save()
        audit_record("refund.failed", organization=payment.organization, obj=refund, reason=refund.failure_message)
    else:
        refund.save()
    return refund
