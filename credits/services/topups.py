"""Top-ups: a customer's request to buy credit, its attempts, its credit and its failures.

The payment itself is the configured `CREDITS_TOPUP_HANDLER`'s (payments), dispatched
after commit; this module records the request (`TopUp`), counts each attempt, credits
the ledger when payments reports success (`credit_topup`, idempotent on the top-up's
ledger reference) and schedules retries with backoff when it reports failure. See
`credits.topup_contract` for what a handler must do. Manual and automatic top-ups share
this path; when an automatic one starts is `credits.services.auto_topup`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiKey, Organization, User
from core.errors import Conflict, DomainError, NotFound
from core.formatting import format_datetime, format_rate, sentence
from core.money import decimal_places, format_money, minor_unit_exponent, round_money
from credits import notify
from credits.models import CreditEvent, EntryKind, EventKind, LedgerEntry, TopUp, TopUpSource, TopUpStatus
from credits.services.ledger import _lock_balance, _require_amount, ledger_post

logger = logging.getLogger(__name__)
# A pending top-up with no attempt after this long was lost on its way to the broker.
STRANDED_AFTER = timedelta(minutes=10)


def topup_minimum(currency: str) -> Decimal:
    """The one minimum of a top-up a customer asks for, in `currency` (`CREDITS_TOPUP_MIN`):
    the portal's form, the hosted checkout and the API all refuse less."""
    minimums = settings.CREDITS_TOPUP_MIN
    return Decimal(minimums.get(currency, minimums["default"]))


def topup_amount_problem(amount: Decimal, currency: str) -> str | None:
    """What is wrong with `amount` as a customer's top-up in `currency`, in words for the
    field's error, or None. The form and the service say the same."""
    low, high = topup_minimum(currency), settings.CREDITS_TOPUP_MAX_AMOUNT
    if not amount.is_finite() or amount < low:
        return f"Enter an amount of at least {format_money(low, currency)}."
    if amount > high:
        return f"Enter an amount of at most {format_money(high, currency)}."
    places = minor_unit_exponent(currency)
    if decimal_places(amount) > places and amount != amount.quantize(Decimal(1).scaleb(-places)):
        return (f"Enter a whole amount of {currency}: it has no smaller unit." if places == 0
                else f"Enter at most {places} decimal places.")
    return None


def validate_topup_amount(amount: Decimal, currency: str) -> Decimal:
    """`amount` as a customer's top-up in `currency`, or a DomainError on the field."""
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise TypeError(f"money must be Decimal, got {type(amount).__name__}")
    amount = Decimal(amount)
    problem = topup_amount_problem(amount, currency)
    if problem:
        raise DomainError(problem, field="amount")
    return amount


@transaction.atomic
def topup_request(
    *, organization: Organization, amount: Decimal, actor: User | None = None, api_key: ApiKey | None = None,
    request_key: str | None = None,
) -> TopUp:
    """A customer asks to buy credit. The handler (payments) charges after commit.
    A repeated `request_key` (a resubmitted portal form) returns the first request."""
    if request_key:
        existing = TopUp.objects.filter(organization=organization, request_key=request_key).first()
        if existing is not None:
            return existing
    amount = validate_topup_amount(amount, organization.currency)
    topup = TopUp.objects.create(
        organization=organization, source=TopUpSource.MANUAL, amount=amount, currency=organization.currency,
        request_key=request_key or None, requested_by=actor if actor is not None and actor.is_authenticated else None, requested_by_api_key=api_key,
    )
    audit_record("credits.topup_requested", actor=actor, api_key=api_key, organization=organization, obj=topup,
                 changes={"amount": amount, "currency": topup.currency})
    _dispatch_after_commit(topup)
    return topup


def _dispatch_after_commit(topup: TopUp) -> None:
    from core import outbox

    outbox.enqueue("credits.topup_dispatch", topup.pk)


@transaction.atomic
def topup_begin_attempt(*, topup_id: int) -> TopUp | None:
    """Count an attempt before the handler runs; None when there is nothing to do
    (already succeeded or abandoned, or a retry is not due yet)."""
    topup = TopUp.objects.select_for_update().filter(pk=topup_id).first()
    if topup is None or topup.status in (TopUpStatus.SUCCEEDED, TopUpStatus.ABANDONED):
        return None
    if topup.status == TopUpStatus.FAILED and topup.next_attempt_at and topup.next_attempt_at > timezone.now():
        return None
    topup.attempts += 1
    topup.status = TopUpStatus.PENDING
    topup.next_attempt_at = None
    topup.save(update_fields=["attempts", "status", "next_attempt_at"])
    return topup


@transaction.atomic
def credit_topup(
    *, organization: Organization, amount: Decimal, currency: str, reference: str, topup_id: int | None = None,
    provider_reference: str = "", reason: str = "", actor: User | None = None,
) -> LedgerEntry:
    """Payments calls this when a top-up payment succeeded. Idempotent on `reference`
    (for a `TopUp` request it is `topup:<id>`); a replay returns the first entry."""
    amount = _require_amount(amount, positive=True)
    if currency != organization.currency:
        raise DomainError(f"This organisation's credit is in {organization.currency}, not {currency}.", field="currency")
    topup = None
    if topup_id is not None:
        _lock_balance(organization.pk, currency)
        topup = TopUp.objects.select_for_update().filter(pk=topup_id, organization=organization).first()
        if topup is None:
            raise NotFound("No such top-up for this organisation.")
        if topup.amount != amount or topup.currency != currency:
            raise Conflict(f"Top-up #{topup.pk} is for {format_money(topup.amount, topup.currency)}, not "
                           f"{format_rate(amount, currency)}.")
        reference = topup.ledger_reference
    if not reference:
        raise DomainError("A top-up needs the reference of its payment.", field="reference")
    label = "Auto top-up" if topup is not None and topup.source == TopUpSource.AUTO else "Top-up"
    entry = ledger_post(organization=organization, amount=amount, kind=EntryKind.TOPUP, currency=currency,
                        reason=reason or label, reference=reference, actor=actor)
    if topup is not None and topup.status != TopUpStatus.SUCCEEDED:
        topup.status = TopUpStatus.SUCCEEDED
        topup.ledger_entry = entry
        topup.completed_at = timezone.now()
        topup.last_error = ""
        topup.provider_reference = provider_reference[:200]
        topup.save(update_fields=["status", "ledger_entry", "completed_at", "last_error", "provider_reference"])
        CreditEvent.objects.create(
            organization=organization, kind=EventKind.TOPUP_SUCCEEDED,
            message=f"{label} of {format_money(amount, currency)} credited.",
            data={"topup_id": topup.pk, "amount": str(amount), "currency": currency, "entry_id": entry.pk},
        )
        audit_record("credits.topup_succeeded", actor=actor, organization=organization, obj=topup,
                     changes={"amount": amount, "provider_reference": provider_reference})
        from webhooks.services import emit

        emit(type="topup.succeeded", organization=organization, data={
            "topup_id": topup.pk, "source": topup.source, "currency": currency,
            "amount": str(round_money(amount, currency)), "ledger_entry_id": entry.pk})
    return entry


def topup_retry_delay(attempts: int) -> timedelta:
    """Backoff after the n-th failed attempt: 5 min, 20 min, 80 min, … capped at a day."""
    return min(timedelta(minutes=5 * 4 ** max(attempts - 1, 0)), timedelta(days=1))


@transaction.atomic
def auto_topup_failed(*, topup_id: int, error: str, retryable: bool = True) -> TopUp:
    """Payments calls this when a top-up payment failed. Retryable failures are tried
    again with backoff up to `CREDITS_TOPUP_MAX_ATTEMPTS`; the customer is told."""
    topup = TopUp.objects.select_for_update(of=("self",)).select_related("organization").filter(pk=topup_id).first()
    if topup is None:
        raise NotFound("No such top-up.")
    if topup.status == TopUpStatus.SUCCEEDED:
        raise Conflict("This top-up already succeeded.")
    if topup.status == TopUpStatus.ABANDONED:
        return topup
    give_up = not retryable or topup.attempts >= settings.CREDITS_TOPUP_MAX_ATTEMPTS
    topup.status = TopUpStatus.ABANDONED if give_up else TopUpStatus.FAILED
    topup.last_error = (error or "payment failed")[:2000]
    topup.next_attempt_at = None if give_up else timezone.now() + topup_retry_delay(topup.attempts)
    topup.save(update_fields=["status", "last_error", "next_attempt_at"])
    when = "We will not retry." if give_up else f"We will retry at {format_datetime(topup.next_attempt_at)}."
    event = CreditEvent.objects.create(
        organization=topup.organization, kind=EventKind.TOPUP_FAILED,
        message=f"Top-up of {format_money(topup.amount, topup.currency)} failed: {sentence(topup.last_error)} {when}",
        data={"topup_id": topup.pk, "attempts": topup.attempts, "error": topup.last_error, "final": give_up},
    )
    audit_record("credits.topup_failed", organization=topup.organization, obj=topup, reason=topup.last_error,
                 changes={"attempts": topup.attempts, "final": give_up})
    notify.email_event_after_commit(event)
    return topup


def topups_stranded_sweep(*, now: datetime | None = None, batch: int = 200) -> int:
    """Top-ups committed as pending that never had an attempt nor an outbox message
    (requested while the broker was down, before the outbox existed): hand each to the
    outbox once. Beat runs it with the retry pass (credits.topup_retry)."""
    from django.db.models import CharField, Exists, OuterRef
    from django.db.models.fields.json import KeyTextTransform
    from django.db.models.functions import Cast

    from core import outbox
    from core.models import OutboxMessage

    now = now or timezone.now()
    has_message = OutboxMessage.objects.filter(task="credits.topup_dispatch").annotate(
        topup=KeyTextTransform("0", "args")).filter(topup=Cast(OuterRef("pk"), CharField()))
    ids = list(TopUp.objects.filter(status=TopUpStatus.PENDING, attempts=0, created_at__lte=now - STRANDED_AFTER)
               .exclude(Exists(has_message)).order_by("id").values_list("id", flat=True)[:batch])
    with transaction.atomic():
        for topup_id in ids:
            logger.warning("top-up %s was stranded (pending, never attempted): dispatching it", topup_id)
            outbox.enqueue("credits.topup_dispatch", topup_id)
    return len(ids)


def topups_due_for_retry(*, now: datetime | None = None, batch: int = 200) -> list[int]:
    now = now or timezone.now()
    return list(TopUp.objects.filter(status=TopUpStatus.FAILED, next_attempt_at__lte=now)
                .order_by("next_attempt_at").values_list("id", flat=True)[:batch])
