"""Automatic charging of postpaid invoices, and dunning when that fails.

- On its due date an open invoice of an organisation with a saved card is charged
  off-session (attempt 0).
- A declined automatic charge opens a dunning case (one that waits for the customer's
  authentication, or that the provider asked us to retry, does not). Retries follow
  `settings.PAYMENTS_DUNNING_RETRY_DAYS`, counted from the first failure (default 1, 3,
  5 and 7 days). The customer is emailed after every failure.
- After the last retry fails, `settings.PAYMENTS_DUNNING_FINAL_ACTION` applies:
  `mark_uncollectible` (the invoice) or `suspend` (the organisation).
- Any payment that settles the invoice, by any means, closes the case.

Each attempt is one payment row, unique per (invoice, attempt): a scheduler that runs
twice, late or concurrently charges each attempt once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.audit import audit_record
from core.formatting import format_date
from core.money import format_money
from payments import services
from payments.gateways import card_provider
from payments.gateways.currencies import ProviderAmountError
from payments.models import DunningCase, DunningStatus, Flow, Payment, PaymentMethod, PaymentStatus, Purpose
from payments.webhook_events import emit_dunning_step

if TYPE_CHECKING:
    from invoices.models import Invoice

logger = logging.getLogger(__name__)
# Invoices charged per scheduler run; each is one provider call (~1 s), so a run stays
# well inside the task's time limit and the next run continues.
AUTOPAY_BATCH = 200


def autopay_candidates(*, now: datetime | None = None) -> list[int]:
    """Open invoices due by now, of organisations with a saved card, never charged
    automatically and with no payment given back: an invoice opened again by a refund or
    a lost dispute waits for the customer or staff, it is not charged again unasked."""
    from invoices.models import Invoice, InvoicePaymentReversal

    now = now or timezone.now()
    has_card = PaymentMethod.objects.filter(organization=OuterRef("organization"), provider=card_provider(),
                                            is_default=True, detached_at__isnull=True)
    charged = Payment.objects.filter(invoice=OuterRef("pk"), flow=Flow.OFF_SESSION)
    reversed_ = InvoicePaymentReversal.objects.filter(invoice=OuterRef("pk"))
    return list(
        Invoice.objects.filter(status="open", due_at__lte=now, organization__billing_mode="postpaid")
        .filter(Exists(has_card)).exclude(Exists(charged)).exclude(Exists(reversed_))
        .order_by("due_at", "id").values_list("id", flat=True)[:AUTOPAY_BATCH]
    )


def _remaining(invoice: Invoice) -> Decimal:
    from invoices.selectors import credited_total

    return invoice.amount_due - invoice.amount_paid - credited_total(invoice)


def autopay_charge(*, invoice_id: int, attempt: int = 0) -> Payment | None:
    """Charge attempt `attempt` of an invoice with the default saved card. Idempotent:
    the payment row for (invoice, attempt) is created once and charged with its own key."""
    from invoices.models import Invoice

    invoice = Invoice.objects.select_related("organization").get(pk=invoice_id)
    payment = Payment.objects.filter(invoice=invoice, flow=Flow.OFF_SESSION, dunning_attempt=attempt).first()
    if payment is None:
        if invoice.status == "open" and _remaining(invoice) > 0 and services.payment_supersede_checkouts(
                organization=invoice.organization, purpose=Purpose.INVOICE, invoice=invoice):
            # The customer's unfinished checkouts end before the card is charged, so the
            # invoice is not paid twice; one they paid meanwhile is recorded instead.
            invoice.refresh_from_db()
        if invoice.status != "open" or _remaining(invoice) <= 0:
            # Settled some other way (a credit note, a payment recorded by invoices).
            dunning_close_if_settled(invoice_id=invoice.pk)
            return None
        method = services.default_method(invoice.organization, card_provider())
        if method is None:
            dunning_record_failure(invoice_id=invoice.pk, attempt=attempt,
                                   message="No saved card to charge.")
            return None
        case = DunningCase.objects.filter(invoice=invoice).first()
        try:
            with transaction.atomic():
                payment = services.payment_create(
                    organization=invoice.organization, purpose=Purpose.INVOICE, provider=method.provider,
                    flow=Flow.OFF_SESSION, amount=_remaining(invoice), invoice=invoice, payment_method=method,
                    dunning_attempt=attempt, dunning_case=case,
                )
        except ProviderAmountError as exc:  # e.g. below the card provider's minimum charge
            dunning_record_failure(invoice_id=invoice.pk, attempt=attempt, message=exc.message)
            return None
        except IntegrityError:
            payment = Payment.objects.get(invoice=invoice, flow=Flow.OFF_SESSION, dunning_attempt=attempt)
    return services.payment_charge_saved_method(payment_id=payment.pk)


@transaction.atomic
def dunning_record_failure(*, invoice_id: int, attempt: int, message: str, now: datetime | None = None) -> DunningCase:
    """An automatic charge failed: schedule the next retry, or take the final action."""
    from invoices.models import Invoice

    now = now or timezone.now()
    invoice = Invoice.objects.select_for_update(no_key=True).select_related("organization").get(pk=invoice_id)
    case, created = DunningCase.objects.select_for_update().get_or_create(
        invoice=invoice, defaults={"organization": invoice.organization, "first_failed_at": now})
    if case.status != DunningStatus.ACTIVE or (not created and attempt <= case.retries_done):
        return case  # a repeated or late report of an attempt already accounted for
    schedule = settings.PAYMENTS_DUNNING_RETRY_DAYS
    case.retries_done = attempt
    case.last_failure = message[:500]
    if attempt < len(schedule):
        case.next_retry_at = case.first_failed_at + timedelta(days=schedule[attempt])
        audit_record("dunning.retry_scheduled", organization=invoice.organization, obj=case, reason=message,
                     changes={"attempt": attempt, "next_retry_at": case.next_retry_at})
    else:
        case.status = DunningStatus.EXHAUSTED
        case.next_retry_at = None
        case.closed_at = now
        case.final_action = settings.PAYMENTS_DUNNING_FINAL_ACTION
        _final_action(case, invoice)
    case.save()
    emit_dunning_step(case, attempt)
    case_id = case.pk
    transaction.on_commit(lambda: dunning_email_customer(case_id=case_id))
    return case


def _final_action(case: DunningCase, invoice: Invoice) -> None:
    reason = f"Automatic payment failed {case.retries_done + 1} times: {case.last_failure}"
    if case.final_action == "suspend":
        from accounts.services import organization_update

        organization_update(organization=invoice.organization, is_active=False, staff=True)
        audit_record("dunning.organization_suspended", organization=invoice.organization, obj=case, reason=reason)
    else:
        from invoices.services import invoice_mark_uncollectible

        invoice_mark_uncollectible(invoice=invoice, reason=reason)
        audit_record("dunning.invoice_uncollectible", organization=invoice.organization, obj=case, reason=reason)


def dunning_due(*, now: datetime | None = None) -> list[tuple[int, int]]:
    """(invoice id, attempt) of every retry that is due."""
    now = now or timezone.now()
    return [(inv, done + 1) for inv, done in DunningCase.objects.filter(
        status=DunningStatus.ACTIVE, next_retry_at__lte=now).order_by("next_retry_at")
        .values_list("invoice_id", "retries_done")[:AUTOPAY_BATCH]]


@transaction.atomic
def dunning_close_if_settled(*, invoice_id: int) -> DunningCase | None:
    case = DunningCase.objects.select_for_update().select_related("invoice").filter(invoice_id=invoice_id).first()
    if case is None or case.status != DunningStatus.ACTIVE:
        return case
    if case.invoice.status == "open" and _remaining(case.invoice) > 0:
        return case
    case.status = DunningStatus.RECOVERED if case.invoice.status == "paid" else DunningStatus.CLOSED
    case.next_retry_at = None
    case.closed_at = timezone.now()
    case.save()
    audit_record("dunning.closed", organization=case.organization, obj=case, changes={"status": case.status})
    return case


def dunning_email_customer(*, case_id: int) -> None:
    case = DunningCase.objects.select_related("invoice", "organization").get(pk=case_id)
    org, invoice = case.organization, case.invoice
    to = [org.billing_email] if org.billing_email else list(
        org.memberships.filter(role__in=["owner", "billing"]).values_list("user__email", flat=True))
    if not to:
        return
    owed = format_money(_remaining(invoice), invoice.currency)
    label = invoice.number or f"#{invoice.pk}"
    if case.status == DunningStatus.ACTIVE:
        body = (f"We could not charge your saved card for invoice {label} ({owed}): {case.last_failure}\n\n"
                f"We will try again on {format_date(case.next_retry_at)} (UTC). To pay now or change your card, "
                f"open the Payments page of the portal.")
    else:
        body = (f"We could not charge your saved card for invoice {label} ({owed}) after "
                f"{case.retries_done + 1} attempts: {case.last_failure}\n\n"
                + ("Your account has been suspended until the invoice is paid."
                   if case.final_action == "suspend" else "The invoice is now overdue and marked uncollectible.")
                + " Please contact us or pay it from the Payments page.")
    send_mail(f"Payment failed for invoice {label}", body, settings.DEFAULT_FROM_EMAIL, to)


__all__ = ["PaymentStatus", "autopay_candidates", "autopay_charge", "dunning_due", "dunning_record_failure"]
