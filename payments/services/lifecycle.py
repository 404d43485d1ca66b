"""A payment's life: creating it, opening checkout or charging a saved card, provider news.

Provider calls run outside transactions (they are slow and may hang); their results are
applied under the payment's row lock (`_lock`). The one rule for provider news
(webhooks, return pages, reconciliation, synchronous charge results) is
`payment_apply_snapshot`: it moves a payment forward to what the provider says, ignores
news older than what we know, and applies the payment's effect (`settlement`) exactly
once, in the transaction that makes it `succeeded`. Every status change goes through
`_move`, which checks `PAYMENT_TRANSITIONS` and writes the audit row; follow-up work is
queued with `_after_commit`. Refunds and saved methods build on these helpers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiKey, Organization, User
from core.errors import Conflict, DomainError, NotFound
from core.money import format_money, round_money
from payments import settlement
from payments.gateways import card_gateway_for, checkout_providers, gateway_for
from payments.gateways.base import GatewayDeclined, GatewayIntegrationError, PaymentSnapshot
from payments.gateways.currencies import check_amount
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
)
from payments.webhook_events import emit_payment

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
    """A customer's top-up: credits' one rule (`CREDITS_TOPUP_MIN` per currency, the
    maximum, the currency's minor unit), the same words as the portal's field error."""
    from credits.services import validate_topup_amount as credits_rule

    return credits_rule(_money(amount, currency), currency)


# Hosted checkouts a customer opened and did not finish: a new checkout for the same
# invoice (or a new top-up) expires them at the provider first (`payment_supersede_checkouts`),
# so they never stand between the customer and paying, and never pile up.
SUPERSEDABLE = (S.PENDING, S.REQUIRES_ACTION, S.FAILED)
# Whose outcome the provider may still change (failed: another card in the same checkout).
OPEN_STATUSES = (S.PENDING, S.REQUIRES_ACTION, S.PROCESSING, S.FAILED)


def invoice_open_amount(invoice: Invoice, *, flow: str = Flow.CHECKOUT) -> Decimal:
    """What is still owed on an invoice, less payments already under way. A hosted
    checkout does not wait for unfinished checkouts (starting one supersedes them:
    `payment_supersede_checkouts`), only for money in flight (a delayed method
    processing, an automatic charge). An automatic charge (`flow` off-session) does not
    wait for hosted checkouts at all: if one completes after all, its money is kept as
    credit (settlement._apply_invoice_payment)."""
    under_way = Payment.objects.filter(invoice=invoice, status__in=[S.PENDING, S.REQUIRES_ACTION, S.PROCESSING])
    if flow == Flow.OFF_SESSION:
        under_way = under_way.exclude(flow=Flow.CHECKOUT)
    else:
        under_way = under_way.exclude(flow=Flow.CHECKOUT, status__in=SUPERSEDABLE)
    in_flight = under_way.aggregate(s=Sum("amount"))["s"] or Decimal("0")
    from invoices.selectors import credited_total

    return invoice.amount_due - invoice.amount_paid - credited_total(invoice) - in_flight


# --- creating payments ----------------------------------------------------------------


def _lock(payment_id: int) -> Payment:
    try:
        return Payment.objects.select_for_update(of=("self",)).select_related("organization").get(pk=payment_id)
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
    if to in (S.SUCCEEDED, S.FAILED):
        emit_payment(f"payment.{to}", payment)


def _checked_amount(
    *, organization: Organization, purpose: str, provider: str, amount: Decimal, flow: str = Flow.CHECKOUT,
    invoice: Invoice | None = None, credits_topup_id: int | None = None,
) -> tuple[Decimal, str]:
    """(amount, currency) a new payment may ask for, or the DomainError saying why not."""
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
    # The provider's own rules for this currency (decimals, last digit, minimum, maximum,
    # currencies it takes): refused here, before any row or call.
    check_amount(provider, amount, currency)
    return amount, currency


@transaction.atomic
def payment_create(
    *, organization: Organization, purpose: str, provider: str, amount: Decimal, flow: str = Flow.CHECKOUT,
    invoice: Invoice | None = None, payment_method: PaymentMethod | None = None, credits_topup_id: int | None = None,
    dunning_attempt: int | None = None, dunning_case: DunningCase | None = None, actor: User | None = None, api_key: ApiKey | None = None,
) -> Payment:
    amount, currency = _checked_amount(organization=organization, purpose=purpose, provider=provider, amount=amount,
                                       flow=flow, invoice=invoice, credits_topup_id=credits_topup_id)
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
    # A checkout that would be refused ends none: the customer's open page stays payable.
    _checked_amount(organization=organization, purpose=purpose, provider=provider, amount=amount, invoice=invoice)
    if payment_supersede_checkouts(organization=organization, purpose=purpose, invoice=invoice, actor=actor) and (
            invoice is not None):
        invoice.refresh_from_db()  # one of them may have been paid meanwhile: ask only for what is open now
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
    except GatewayIntegrationError as exc:
        # Not the customer's fault, not a decline: the payment stays pending (reconciliation
        # cancels it when it expires) and staff are told.
        payment_report_provider_error(payment=payment, error=exc)
        raise
    with transaction.atomic():
        payment = _lock(payment.pk)
        payment.provider_checkout_id = started.checkout_id
        payment.checkout_url = started.redirect_url
        if payment.status == S.PENDING:
            _move(payment, S.REQUIRES_ACTION, actor=actor)
        else:
            payment.save(update_fields=["provider_checkout_id", "checkout_url", "updated_at"])
    if payment.status == S.CANCELED:
        # A second checkout started at the same moment superseded this one before its
        # page existed: the page is ended too, so only the newer one can be paid.
        gateway_for(provider).expire_checkout(payment)
        raise Conflict("A newer checkout replaced this one; pay with the newer one.")
    # Two checkouts started at the same moment each looked for one to replace before the
    # other's payment existed: now that this page exists, the older ones end, so of any
    # number started at once only the newest stays payable.
    payment_supersede_checkouts(organization=organization, purpose=purpose, invoice=invoice, actor=actor,
                                older_than=payment.pk)
    return payment


def payment_supersede_checkouts(
    *, organization: Organization, purpose: str, invoice: Invoice | None = None, actor: User | None = None,
    older_than: int | None = None,
) -> list[Payment]:
    """End the hosted checkouts of this invoice (or the organisation's checkout
    top-ups) that nobody finished, before a new one opens: each is expired at its
    provider (Stripe expires the session; a PayPal order is left to lapse, never
    captured; the sandbox's page pays only open payments) and canceled here. One the
    customer paid meanwhile is recorded as the provider says instead, so the new
    checkout asks only for what is still open: one invoice is never charged twice.
    Provider calls run outside transactions; each result is applied under the row lock."""
    candidates = Payment.objects.filter(organization=organization, purpose=purpose, flow=Flow.CHECKOUT,
                                        status__in=SUPERSEDABLE)
    candidates = (candidates.filter(invoice=invoice) if invoice is not None
                  else candidates.filter(invoice__isnull=True, credits_topup_id__isnull=True))
    if older_than is not None:
        candidates = candidates.filter(pk__lt=older_than)
    ended = []
    for payment in candidates.select_related("organization").order_by("id"):
        snapshot = gateway_for(payment.provider).expire_checkout(payment)
        # Failed at the provider and not open there (Stripe expired it or would not: a
        # completed session whose delayed payment failed) takes no more money: it ends
        # here too, or it stays a candidate costing provider calls at every checkout.
        if snapshot.status in (S.CANCELED, S.FAILED):
            ended.append(payment_cancel(payment=payment, actor=actor, reason="Replaced by a newer checkout."))
        else:
            ended.append(payment_apply_snapshot(payment_id=payment.pk, snapshot=snapshot))
    return ended


def payment_charge_saved_method(*, payment_id: int) -> Payment:
    """Charge an off-session payment's saved method and apply the answer. Safe to call
    again: the provider sees the same idempotency key (`payment:{id}`) and charges once;
    a payment already decided is left alone. A decline is `failed`; a charge the bank
    holds for the customer's authentication is `requires_action` (they are emailed a
    link, `payments:confirm`), not a decline. Raises `GatewayUnavailable` when the
    outcome is unknown or the provider asks us to wait (the payment stays as it was;
    call again with the same key), and `GatewayIntegrationError` when the provider
    refused our request (staff are told once; the payment stays as it was)."""
    payment = Payment.objects.select_related("payment_method", "organization").get(pk=payment_id)
    if payment.status not in (S.PENDING, S.PROCESSING):
        return payment
    try:
        snapshot = card_gateway_for(payment.provider).charge_saved_method(payment)
    except GatewayIntegrationError as exc:
        payment_report_provider_error(payment=payment, error=exc)
        raise
    return payment_apply_snapshot(payment_id=payment.pk, snapshot=snapshot)


@transaction.atomic
def payment_report_provider_error(*, payment: Payment, error: GatewayIntegrationError) -> None:
    """The provider refused our request for this payment: a bug or misconfiguration of
    ours. Audited, and staff are mailed the first time for each payment; the customer is
    not told of a decline, since there was none."""
    from accounts.models import AuditLog

    seen = AuditLog.objects.filter(action="payment.provider_error", object_type=Payment._meta.label,
                                   object_id=str(payment.pk)).exists()
    audit_record("payment.provider_error", organization=payment.organization, obj=payment,
                 reason=error.message, changes={"provider_code": error.provider_code})
    if not seen:
        _after_commit("payments.tasks.payment_provider_error_task", payment.pk, error.provider_code)


def payment_confirm_start(*, payment: Payment, return_url: str, actor: User | None = None) -> str:
    """The customer opened the link of a charge their bank held for authentication and
    asked to confirm it. Returns the provider's hosted authentication page to send them
    to, or "" when the payment needs nothing more (it is applied by the return page and
    the webhook, once, through `payment_apply_snapshot`)."""
    from accounts.models import AuditLog

    if payment.status != S.REQUIRES_ACTION or payment.flow != Flow.OFF_SESSION or payment.provider != Provider.STRIPE:
        raise Conflict("This payment does not wait for a confirmation.")
    with transaction.atomic():
        attempt = AuditLog.objects.filter(action="payment.confirmation_started", object_type=Payment._meta.label,
                                          object_id=str(payment.pk)).count() + 1
        audit_record("payment.confirmation_started", actor=actor, organization=payment.organization, obj=payment,
                     changes={"attempt": attempt})
    from payments.gateways.stripe_gateway import StripeGateway

    return StripeGateway().confirm_on_session(payment, return_url=return_url, attempt=attempt)


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
        _record_reported_amount(payment, snapshot)
        _move(payment, S.SUCCEEDED, succeeded_at=timezone.now(), failure_code="", failure_message="")
        settlement.apply_payment(payment)
        _after_commit("payments.tasks.payment_succeeded_task", payment.pk)
    elif target == S.FAILED and target in PAYMENT_TRANSITIONS[payment.status]:
        _move(payment, S.FAILED, failed_at=timezone.now(), failure_code=snapshot.failure_code[:100],
              failure_message=snapshot.failure_message[:500])
        _after_commit("payments.tasks.payment_failed_task", payment.pk)
    elif target != payment.status and target in PAYMENT_TRANSITIONS[payment.status] and target != S.SUCCEEDED:
        _move(payment, target)
        if target == S.REQUIRES_ACTION and payment.flow == Flow.OFF_SESSION:
            # The bank wants the customer: they get a link to confirm. Not a decline, so
            # no dunning and no failed top-up.
            _after_commit("payments.tasks.payment_action_required_task", payment.pk)
    else:
        # News no newer than what we know (a duplicate, or an event overtaken by a later one).
        payment.save()
    return payment


def _record_reported_amount(payment: Payment, snapshot: PaymentSnapshot) -> None:
    """A payment the provider completed is always recorded, never refused for ever (a
    refusal here made every redelivery fail, and autopay charged again). When the
    provider reports another amount than ours, staff are told (`payment.amount_mismatch`,
    a mail to the admins) and the payment records:
    - in our currency, what the provider says it took: never credit what was not paid,
      never leave money received unrecorded (an invoice overpaid keeps the rest as credit);
    - in another currency (a conversion we could not read back), our own amount: the
      provider charged our price, converted, and pays us that."""
    if snapshot.amount is None:
        return
    currency = snapshot.currency or payment.currency
    if snapshot.amount == payment.amount and currency == payment.currency:
        return
    expected = f"{round_money(payment.amount, payment.currency)} {payment.currency}"
    reported = f"{snapshot.amount} {currency}"
    recorded = payment.amount
    if currency == payment.currency and snapshot.amount > 0:
        recorded = snapshot.amount
        payment.amount = recorded
    logger.warning("payments: provider reports %s for payment %s of %s; recorded %s %s",
                   reported, payment.pk, expected, recorded, payment.currency)
    audit_record("payment.amount_mismatch", organization=payment.organization, obj=payment,
                 changes={"expected": expected, "reported": reported, "recorded": f"{recorded} {payment.currency}"})
    _after_commit("payments.tasks.payment_amount_mismatch_task", payment.pk, expected, reported)


def _after_commit(task_path: str, *args: object) -> None:
    """Through the outbox (core.outbox): sent after commit, and after a broker outage."""
    from django.utils.module_loading import import_string

    from core import outbox

    outbox.enqueue(import_string(task_path).name, *args)


@transaction.atomic
def payment_cancel(*, payment: Payment, actor: User | None = None, reason: str = "") -> Payment:
    payment = _lock(payment.pk)
    if payment.status in (S.PENDING, S.REQUIRES_ACTION) or (payment.status == S.FAILED
                                                            and payment.flow == Flow.CHECKOUT):
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
