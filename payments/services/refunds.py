"""Refunds: asking for one, submitting it to the provider, applying the provider's answer.

Only a succeeded payment is refunded, and never beyond what is left of it after the
refunds the provider may still pay (pending, requires_action); a failed or canceled
refund frees its amount. The provider sees the refund's key (`refund:{id}`).

A refund is created at the provider once. After that it is only looked up
(`refund_submit`):
- its provider id known: looked up by it (Stripe GET /v1/refunds/{id}, PayPal GET
  /v2/payments/refunds/{id}), never created again;
- no provider id (the create's answer was lost): sent again with the same key only while
  the provider still holds the key (`gateway.refund_key_lifetime`: Stripe 24 h, PayPal's
  Payments v2 45 days, each less a margin), so a repeat is the same refund; past it the
  provider could make a second one, so we look for ours among the payment's refunds and,
  when it is not there, leave it for a person (`needs_attention`, `RefundNeedsPerson`).

Moves follow `REFUND_TRANSITIONS` (payments.models). The reversal of what the payment paid
for (`settlement.reverse_refund`) runs once, in the transaction that makes the refund
`succeeded`, under the payment's row lock; `succeeded` is final.
"""

from __future__ import annotations

from datetime import datetime
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
from payments.models import (
    OPEN_REFUND_STATUSES,
    REFUND_TRANSITIONS,
    SETTLED_STATUSES,
    Payment,
    Provider,
    Refund,
    RefundStatus,
)
from payments.services.lifecycle import S, _after_commit, _lock, _money, _move
from payments.webhook_events import emit_refund

R = RefundStatus


class RefundNeedsPerson(DomainError):
    """The machine cannot tell where a refund stands without risking a second one."""

    status_code = 409
    code = "refund_needs_attention"


def _spoken_for(payment: Payment) -> Decimal:
    return (payment.refunds.filter(status__in=OPEN_REFUND_STATUSES).aggregate(s=Sum("amount"))["s"]
            or Decimal("0"))


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
    available = payment.refundable_amount - _spoken_for(payment)
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


def refund_submit(*, refund_id: int, now: datetime | None = None) -> Refund:
    """Create the refund at the provider, or, once created, ask where it stands (see the
    module's rules). Raises `GatewayUnavailable` when the outcome is unknown, and
    `RefundNeedsPerson` when only a person can tell."""
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    if refund.status not in OPEN_REFUND_STATUSES:
        return refund
    payment = refund.payment
    now = now or timezone.now()
    snapshot: RefundSnapshot | None
    if payment.provider == Provider.MANUAL:
        # Money sent back by bank: staff record it here, nothing to call.
        snapshot = RefundSnapshot(provider_refund_id=f"bank:{refund.pk}", status=R.SUCCEEDED,
                                  amount=refund.amount, currency=refund.currency, our_refund_id=refund.pk)
    else:
        gateway = gateway_for(payment.provider)
        if refund.provider_refund_id:
            snapshot = gateway.refund_lookup(refund)
        elif refund.created_at > now - gateway.refund_key_lifetime:
            # Never answered, or its answer was lost: the same key is the same refund.
            try:
                snapshot = gateway.refund(refund)
            except GatewayDeclined as exc:
                snapshot = RefundSnapshot(provider_refund_id="", status=R.FAILED, amount=refund.amount,
                                          currency=refund.currency, our_refund_id=refund.pk, failure_message=exc.message)
        else:
            snapshot = gateway.refund_lookup(refund)
        if snapshot is None:
            message = (f"Refund {refund.pk}: its answer was lost and {payment.get_provider_display()} no longer "
                       f"holds its key; no refund of ours is there. Check the provider, then refund again or "
                       f"record the outcome by hand.")
            refund_flag(refund_id=refund.pk, message=message)
            raise RefundNeedsPerson(message)
    if snapshot.our_refund_id is None:
        snapshot = RefundSnapshot(**{**snapshot.__dict__, "our_refund_id": refund.pk})
    return refund_apply_snapshot(payment_id=payment.pk, snapshot=snapshot)


@transaction.atomic
def refund_flag(*, refund_id: int, message: str) -> Refund:
    """Leave a refund for a person: shown in the console, audited once per message."""
    refund = Refund.objects.select_for_update().get(pk=refund_id)
    if refund.needs_attention != message[:500]:
        refund.needs_attention = message[:500]
        refund.save(update_fields=["needs_attention"])
        audit_record("refund.needs_attention", organization=refund.organization, obj=refund, reason=message)
    return refund


def _find(payment: Payment, snapshot: RefundSnapshot) -> Refund | None:
    if snapshot.provider_refund_id:
        found = payment.refunds.select_for_update().filter(provider_refund_id=snapshot.provider_refund_id).first()
        if found is not None:
            return found
    if snapshot.our_refund_id:
        ours = payment.refunds.select_for_update().filter(pk=snapshot.our_refund_id).first()
        # A second provider refund carrying our id (a repeat past the key's lifetime, by
        # anybody) is not ours: it is money that left too, recorded as its own refund.
        if ours is not None and not (ours.provider_refund_id and snapshot.provider_refund_id):
            return ours
    return None


@transaction.atomic
def refund_apply_snapshot(*, payment_id: int, snapshot: RefundSnapshot,
                          reason_if_new: str = "Refunded at the provider") -> Refund:
    """Apply what the provider says about one refund, along `REFUND_TRANSITIONS`. A
    refund we did not ask for (made in the provider's dashboard) is recorded too. Its
    reversal runs once, on `succeeded`; news a refund cannot take changes nothing."""
    payment = _lock(payment_id)
    refund = _find(payment, snapshot)
    if refund is None:
        refund = Refund.objects.create(payment=payment, organization=payment.organization, amount=snapshot.amount,
                                       currency=snapshot.currency or payment.currency, reason=reason_if_new,
                                       provider_refund_id=snapshot.provider_refund_id)
        audit_record("refund.recorded_from_provider", organization=payment.organization, obj=refund,
                     changes={"payment": payment.pk, "amount": snapshot.amount})
    if snapshot.provider_refund_id and not refund.provider_refund_id:
        refund.provider_refund_id = snapshot.provider_refund_id
    before, to = refund.status, snapshot.status
    if to == before or to not in REFUND_TRANSITIONS[before]:
        if before == R.SUCCEEDED and to in (R.FAILED, R.CANCELED):
            # Stripe can fail a refund it reported succeeded; the money came back to our
            # balance, but the credit is already reversed: a person decides.
            refund.needs_attention = (f"The provider now reports this succeeded refund {to}: the money is back "
                                      f"with us, the reversal stands. Refund again or credit back by hand.")
            audit_record("refund.failed_after_success", organization=payment.organization, obj=refund,
                         reason=snapshot.failure_message[:500], changes={"status": to})
        refund.save()
        return refund
    refund.status = to
    if to == R.SUCCEEDED:
        if payment.status not in SETTLED_STATUSES:
            raise Conflict(f"Payment {payment.pk} is {payment.status}; a refund needs its success first.")
        if payment.amount_refunded + refund.amount > payment.amount:
            raise Conflict(f"Refund {refund.pk} of {refund.amount} exceeds what is left of payment {payment.pk}.")
        refund.succeeded_at = timezone.now()
        refund.failure_message = ""
        refund.save()
        settlement.reverse_refund(refund)
        payment.amount_refunded += refund.amount
        if payment.amount_refunded == payment.amount:
            _move(payment, S.REFUNDED)
        else:
            payment.save(update_fields=["amount_refunded", "updated_at"])
        emit_refund(refund, payment)
        audit_record("refund.succeeded", actor=refund.requested_by, organization=payment.organization, obj=refund,
                     reason=refund.reason, changes={"amount": refund.amount, "payment": payment.pk,
                                                    "from": before})
    elif to in (R.FAILED, R.CANCELED):
        refund.failure_message = snapshot.failure_message[:500]
        refund.save()
        audit_record(f"refund.{to}", organization=payment.organization, obj=refund, reason=refund.failure_message)
    else:
        refund.save()
    return refund


def refund_record_provider_reversal(*, payment_id: int, key: str, amount: Decimal, currency: str,
                                    reason: str) -> Refund | None:
    """Money the provider returned by itself (a dispute lost): recorded as a succeeded
    refund keyed `key` (so any number of deliveries apply it once), of exactly what the
    provider says, capped at what is left of the payment; anything beyond is audited for
    a person, never reversed twice."""
    with transaction.atomic():
        payment = _lock(payment_id)
        existing = payment.refunds.filter(provider_refund_id=key).first()
        if existing is not None:
            return existing
        left = payment.refundable_amount
        applied = min(amount, left)
        if applied < amount:
            audit_record("payment.provider_reversal_exceeds_refundable", organization=payment.organization,
                         obj=payment, reason=reason,
                         changes={"key": key, "provider_amount": amount, "left": left, "excess": amount - applied})
        if applied <= 0:
            return None
        return refund_apply_snapshot(
            payment_id=payment.pk, reason_if_new=reason,
            snapshot=RefundSnapshot(provider_refund_id=key, status=R.SUCCEEDED, amount=applied,
                                    currency=currency or payment.currency))
