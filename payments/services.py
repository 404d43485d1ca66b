"""Every write to payments: keyword-only, one transaction, audited; provider calls outside
transactions (they are slow and may hang), their results applied under the row lock.

The one rule for provider news (webhooks, return pages, reconciliation, synchronous
charge results) is `payment_apply_snapshot`: it moves a payment forward to what the
provider says, ignores news older than what we know, and applies the payment's effect
exactly once, in the transaction that makes it `succeeded`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiKey, Organization, User
from core.errors import Conflict, DomainError, NotFound
from core.money import format_money, round_money
from payments import settlement
from payments.gateways import card_gateway_for, checkout_providers, gateway_for
from payments.gateways.base import GatewayDeclined, PaymentSnapshot, RefundSnapshot, SavedMethod
from payments.models import (
    PAYMENT_TRANSITIONS,
    SETTLED_STATUSES,
    DunningCase,
    Flow,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Provider,
    Purpose,
    Refund,
    RefundStatus,
)

if TYPE_CHECKING:
    from invoices.models import Invoice

logger = logging.getLogger(__name__)
S = PaymentStatus


# --- amounts ------------------------------------------------------------------------


def _money(amount: Decimal, currency: str, *, field: str = "amount") -> Decimal:
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise TypeError(f"money must be Decimal, got {type(amount).__name__}")
    amount = Decimal(amount)
    if not amount.is_finite() or amount <= 0:
        raise DomainError("Enter an amount greater than zero.", field=field)
    if round_money(amount, currency) != amount:
        raise DomainError(f"{currency} amounts have at most the currency's minor-unit digits.", field=field)
    return amount


def validate_topup_amount(amount: Decimal, currency: str) -> Decimal:
    amount = _money(amount, currency)
    if amount < settings.PAYMENTS_TOPUP_MIN or amount > settings.PAYMENTS_TOPUP_MAX:
        low, high = format_money(settings.PAYMENTS_TOPUP_MIN, currency), format_money(settings.PAYMENTS_TOPUP_MAX, currency)
        raise DomainError(f"Top up between {low} and {high}.", field="amount")
    return amount


def invoice_open_amount(invoice: Invoice, *, flow: str = Flow.CHECKOUT) -> Decimal:
    """What is still owed on an invoice, less payments already under way. An automatic
    charge (`flow` off-session) does not wait for hosted checkouts the customer opened
    and may never finish: if one completes after all, its money is kept as credit
    (settlement._apply_invoice_payment)."""
    under_way = Payment.objects.filter(invoice=invoice, status__in=[S.PENDING, S.REQUIRES_ACTION, S.PROCESSING])
    if flow == Flow.OFF_SESSION:
        under_way = under_way.exclude(flow=Flow.CHECKOUT)
    in_flight = under_way.aggregate(s=Sum("amount"))["s"] or Decimal("0")
    from invoices.selectors import credited_total

    return invoice.amount_due - invoice.amount_paid - credited_total(invoice) - in_flight


# --- creating payments ----------------------------------------------------------------


def _lock(payment_id: int) -> Payment:
    try:
        return Payment.objects.select_for_update().select_related("organization").get(pk=payment_id)
    except Payment.DoesNotExist:
        raise NotFound("No such payment.")


def _move(payment: Payment, to: str, *, actor: User | None = None, **fields: Any) -> None:
    payment.check_transition(to)
    before = payment.status
    payment.status = to
    for name, value in fields.items():
        setattr(payment, name, value)
    payment.save()
    audit_record(f"payment.{to}", actor=actor, organization=payment.organization, obj=payment,
                 changes={"status": [before, to], **{k: v for k, v in fields.items() if k.startswith("failure")}})


@transaction.atomic
def payment_create(
    *, organization: Organization, purpose: str, provider: str, amount: Decimal, flow: str = Flow.CHECKOUT,
    invoice: Invoice | None = None, payment_method: PaymentMethod | None = None, credits_topup_id: int | None = None,
    dunning_attempt: int | None = None, dunning_case: DunningCase | None = None, actor: User | None = None, api_key: ApiKey | None = None,
) -> Payment:
    if purpose == Purpose.INVOICE:
        if invoice is None or invoice.organization_id != organization.pk:
            raise NotFound("No such invoice.", field="invoice")
        if invoice.status != "open":
            raise Conflict("Only an open invoice can be paid.", field="invoice")
        currency = invoice.currency
        amount = _money(amount, currency)
        open_amount = invoice_open_amount(invoice, flow=flow)
        if amount > open_amount:
            raise DomainError(f"At most {format_money(open_amount, currency)} is still open on this invoice.",
                              field="amount")
    else:
        currency = organization.currency
        amount = _money(amount, currency) if credits_topup_id else validate_topup_amount(amount, currency)
    payment = Payment.objects.create(
        organization=organization, purpose=purpose, provider=provider, flow=flow, amount=amount, currency=currency,
        invoice=invoice, payment_method=payment_method, credits_topup_id=credits_topup_id, initiated_by=actor,
        dunning_attempt=dunning_attempt, dunning_case=dunning_case,
    )
    audit_record("payment.created", actor=actor, api_key=api_key, organization=organization, obj=payment,
                 changes={"purpose": purpose, "provider": provider, "amount": amount, "currency": currency,
                          "invoice": getattr(invoice, "pk", None), "flow": flow})
    return payment


def payment_start_checkout(
    *, organization: Organization, purpose: str, provider: str, amount: Decimal, invoice: Invoice | None = None,
    actor: User | None = None, urls: Callable[[Payment], tuple[str, str]],
) -> Payment:
    """Create the payment, then open the provider's hosted page for it. `urls(payment)`
    gives the (success, cancel) return addresses. If the provider does not answer the
    payment stays `pending`; reconciliation cancels it when it expires."""
    if provider not in checkout_providers():
        raise DomainError("That payment provider is not available.", field="provider")
    payment = payment_create(organization=organization, purpose=purpose, provider=provider, amount=amount,
                             invoice=invoice, actor=actor)
    success_url, cancel_url = urls(payment)
    description = (f"Invoice {getattr(invoice, 'number', '') or invoice.pk}" if invoice is not None
                   else f"{settings.PORTAL_BRAND} credit top-up")
    try:
        started = gateway_for(provider).start_checkout(
            payment, description=description, success_url=success_url, cancel_url=cancel_url)
    except GatewayDeclined as exc:
        payment_apply_snapshot(payment_id=payment.pk, snapshot=PaymentSnapshot(
            status=S.FAILED, failure_code=exc.code, failure_message=exc.message))
        raise
    with transaction.atomic():
        payment = _lock(payment.pk)
        payment.provider_checkout_id = started.checkout_id
        payment.checkout_url = started.redirect_url
        if payment.status == S.PENDING:
            _move(payment, S.REQUIRES_ACTION, actor=actor)
        else:
            payment.save(update_fields=["provider_checkout_id", "checkout_url", "updated_at"])
    return payment


def payment_charge_saved_method(*, payment_id: int) -> Payment:
    """Charge an off-session payment's saved method and apply the answer. Safe to call
    again: the provider sees the same idempotency key (`payment:{id}`) and charges once;
    a payment already decided is left alone. Raises `GatewayUnavailable` when the
    outcome is unknown (the payment stays as it was; call again)."""
    payment = Payment.objects.select_related("payment_method", "organization").get(pk=payment_id)
    if payment.status not in (S.PENDING, S.PROCESSING):
        return payment
    snapshot = card_gateway_for(payment.provider).charge_saved_method(payment)
    return payment_apply_snapshot(payment_id=payment.pk, snapshot=snapshot)


# --- provider news --------------------------------------------------------------------


@transaction.atomic
def payment_apply_snapshot(*, payment_id: int, snapshot: PaymentSnapshot) -> Payment:
    payment = _lock(payment_id)
    for name in ("provider_payment_id", "provider_charge_id"):
        value = getattr(snapshot, name)
        if value and not getattr(payment, name):
            setattr(payment, name, value)
    target = snapshot.status
    if target == S.SUCCEEDED and payment.status not in SETTLED_STATUSES:
        if snapshot.amount is not None and (snapshot.amount != payment.amount or snapshot.currency != payment.currency):
            # Never credit what was not paid: a mismatch is a bug or tampering, for staff.
            raise Conflict(f"Provider reports {snapshot.amount} {snapshot.currency} for payment {payment.pk} "
                           f"of {payment.amount} {payment.currency}.")
        _move(payment, S.SUCCEEDED, succeeded_at=timezone.now(), failure_code="", failure_message="")
        settlement.apply_payment(payment)
        _after_commit("payments.tasks.payment_succeeded_task", payment.pk)
    elif target == S.FAILED and target in PAYMENT_TRANSITIONS[payment.status]:
        _move(payment, S.FAILED, failed_at=timezone.now(), failure_code=snapshot.failure_code[:100],
              failure_message=snapshot.failure_message[:500])
        _after_commit("payments.tasks.payment_failed_task", payment.pk)
    elif target != payment.status and target in PAYMENT_TRANSITIONS[payment.status] and target != S.SUCCEEDED:
        _move(payment, target)
    else:
        # News no newer than what we know (a duplicate, or an event overtaken by a later one).
        payment.save()
    return payment


def _after_commit(task_path: str, *args: object) -> None:
    from django.utils.module_loading import import_string

    transaction.on_commit(lambda: import_string(task_path).delay(*args))


@transaction.atomic
def payment_cancel(*, payment: Payment, actor: User | None = None, reason: str = "") -> Payment:
    payment = _lock(payment.pk)
    if payment.status in (S.PENDING, S.REQUIRES_ACTION):
        _move(payment, S.CANCELED, actor=actor, failure_message=reason[:500])
    return payment


@transaction.atomic
def payment_mark_disputed(*, payment_id: int, reason: str, at: datetime | None = None) -> Payment:
    payment = _lock(payment_id)
    if payment.disputed_at is None:
        payment.disputed_at = at or timezone.now()
        payment.dispute_reason = reason[:100]
        payment.save(update_fields=["disputed_at", "dispute_reason", "updated_at"])
        audit_record("payment.disputed", organization=payment.organization, obj=payment, reason=reason)
        _after_commit("payments.tasks.payment_disputed_task", payment.pk)
    return payment


@transaction.atomic
def payment_record_bank_transfer(
    *, invoice: Invoice, amount: Decimal, reference: str, actor: User, reason: str = "", received_at: datetime | None = None,
) -> Payment:
    """Staff record money that arrived by bank transfer against an invoice."""
    if not reference.strip():
        raise DomainError("Enter the bank transfer's reference.", field="reference")
    payment = payment_create(organization=invoice.organization, purpose=Purpose.INVOICE, provider=Provider.MANUAL,
                             flow=Flow.BANK_TRANSFER, amount=amount, invoice=invoice, actor=actor)
    payment.reference = reference.strip()[:200]
    payment.provider_payment_id = f"bank:{payment.pk}"
    _move(payment, S.SUCCEEDED, actor=actor, succeeded_at=received_at or timezone.now())
    settlement.apply_payment(payment)
    audit_record("payment.bank_transfer_recorded", actor=actor, organization=payment.organization, obj=payment,
                 reason=reason or reference, changes={"invoice": invoice.pk, "amount": amount, "reference": reference})
    _after_commit("payments.tasks.payment_succeeded_task", payment.pk)
    return payment


# --- refunds --------------------------------------------------------------------------


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


# --- saved payment methods ----------------------------------------------------------


@transaction.atomic
def payment_method_save(*, organization: Organization, provider: str, saved: SavedMethod,
                        actor: User | None = None) -> PaymentMethod:
    """Record a card saved through the provider's hosted flow. Idempotent on the
    provider's id; the organisation's first active card becomes its default."""
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    method, created = PaymentMethod.objects.get_or_create(
        provider=provider, provider_method_id=saved.provider_method_id,
        defaults=dict(organization=organization, provider_customer_id=saved.provider_customer_id, brand=saved.brand,
                      last4=saved.last4, exp_month=saved.exp_month, exp_year=saved.exp_year),
    )
    if method.organization_id != organization.pk:
        raise Conflict("That payment method belongs to another customer.")
    if created:
        if not PaymentMethod.objects.filter(organization=organization, is_default=True, detached_at=None).exists():
            method.is_default = True
            method.save(update_fields=["is_default"])
        audit_record("payment_method.added", actor=actor, organization=organization, obj=method,
                     changes={"provider": provider, "brand": saved.brand, "last4": saved.last4})
    return method


@transaction.atomic
def payment_method_set_default(*, method: PaymentMethod, actor: User | None = None) -> PaymentMethod:
    Organization.objects.select_for_update().filter(pk=method.organization_id).first()
    method = PaymentMethod.objects.get(pk=method.pk)
    if method.detached_at:
        raise Conflict("A removed payment method cannot be the default.")
    PaymentMethod.objects.filter(organization_id=method.organization_id, is_default=True).exclude(
        pk=method.pk).update(is_default=False)
    if not method.is_default:
        method.is_default = True
        method.save(update_fields=["is_default"])
        audit_record("payment_method.default_set", actor=actor, organization=method.organization, obj=method)
    return method


@transaction.atomic
def payment_method_detach(*, method: PaymentMethod, actor: User | None = None, at_provider: bool = True) -> PaymentMethod:
    """Remove a saved method here, and at the provider after commit (unless the provider
    told us it is gone). The newest remaining card becomes the default."""
    Organization.objects.select_for_update().filter(pk=method.organization_id).first()
    method = PaymentMethod.objects.get(pk=method.pk)
    if method.detached_at:
        return method
    was_default = method.is_default
    method.detached_at = timezone.now()
    method.is_default = False
    method.save(update_fields=["detached_at", "is_default"])
    if was_default:
        successor = (PaymentMethod.objects.filter(organization_id=method.organization_id, detached_at=None)
                     .order_by("-created_at").first())
        if successor:
            successor.is_default = True
            successor.save(update_fields=["is_default"])
    audit_record("payment_method.removed", actor=actor, organization=method.organization, obj=method,
                 changes={"at_provider": at_provider})
    if at_provider:
        _after_commit("payments.tasks.payment_method_detach_task", method.pk)
    return method


def default_method(organization: Organization, provider: str) -> PaymentMethod | None:
    return PaymentMethod.objects.filter(organization=organization, provider=provider, is_default=True,
                                        detached_at=None).first()


def payment_method_save_safely(**kwargs: Any) -> PaymentMethod:
    """`payment_method_save` for concurrent deliveries of one card (webhook and return page)."""
    try:
        return payment_method_save(**kwargs)
    except IntegrityError:
        return payment_method_save(**kwargs)
