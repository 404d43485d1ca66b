"""Every write to credit: keyword-only, one transaction, an audit row for people's changes.

Lock order, everywhere: the `Balance` row first (`_lock_balance`), then the rows that
hang off it (promotional grants, top-ups). The set-based credit sync locks many balance
rows in ascending id order, so two writers never wait on each other in a cycle.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiKey, Organization, User
from core.errors import Conflict, DomainError, NotFound
from core.money import decimal_places, format_money
from credits import notify
from credits.models import (
    PROMO_CONSUMING_KINDS,
    ZERO,
    AutoTopUpSettings,
    Balance,
    CreditEvent,
    EntryKind,
    EventKind,
    LedgerEntry,
    PromoGrant,
    TopUp,
    TopUpSource,
    TopUpStatus,
)

MAX_REASON_LENGTH = 2000


# --- the ledger -------------------------------------------------------------


def _lock_balance(organization_id: int, currency: str) -> Balance:
    """The balance row, locked until the transaction ends. Created on first use; the
    insert ignores a concurrent creator, then everybody queues on the same row."""
    balance = Balance.objects.select_for_update().filter(organization_id=organization_id, currency=currency).first()
    if balance is None:
        Balance.objects.bulk_create([Balance(organization_id=organization_id, currency=currency)], ignore_conflicts=True)
        balance = Balance.objects.select_for_update().get(organization_id=organization_id, currency=currency)
    return balance


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Give a reason.", field="reason")
    if len(reason) > MAX_REASON_LENGTH:
        raise DomainError(f"Keep the reason under {MAX_REASON_LENGTH} characters.", field="reason")
    return reason


def _require_amount(amount: Decimal, *, positive: bool = False) -> Decimal:
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise TypeError(f"money must be Decimal, got {type(amount).__name__}")
    amount = Decimal(amount)
    if not amount.is_finite():
        raise DomainError("Amount must be a number.", field="amount")
    if positive and amount <= 0:
        raise DomainError("Amount must be greater than zero.", field="amount")
    if amount == 0:
        raise DomainError("Amount must not be zero.", field="amount")
    return amount


@transaction.atomic
def ledger_post(
    *,
    organization: Organization,
    amount: Decimal,
    kind: str,
    reason: str,
    reference: str = "",
    actor: User | None = None,
    api_key: ApiKey | None = None,
    currency: str | None = None,
    promo_grant: PromoGrant | None = None,
    reverses: LedgerEntry | None = None,
    at: datetime | None = None,
    usage: dict | None = None,
) -> LedgerEntry:
    """Append one transaction and move the cached balance with it, under the row lock.

    A non-empty `reference` names the external cause; posting the same reference again
    returns the first entry and changes nothing. `usage` carries a usage entry's
    metering fields (run, rated-usage ids, period)."""
    amount = _require_amount(amount)
    reason = _require_reason(reason)
    if kind not in EntryKind.values:
        raise DomainError(f"Unknown ledger entry kind {kind!r}.", field="kind")
    currency = currency or organization.currency
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    balance = _lock_balance(organization.pk, currency)
    if reference:
        existing = LedgerEntry.objects.filter(organization_id=organization.pk, reference=reference).first()
        if existing is not None:
            return existing

    if kind in (EntryKind.PROMO_GRANT, EntryKind.PROMO_EXPIRY):
        promo_delta = amount
    elif amount < 0 and kind in PROMO_CONSUMING_KINDS and balance.promo_amount > 0:
        promo_delta = -min(balance.promo_amount, -amount)
        _consume_promo_grants(organization.pk, currency, -promo_delta)
    else:
        promo_delta = ZERO

    now = at or timezone.now()
    balance.amount += amount
    balance.promo_amount += promo_delta
    entry = LedgerEntry.objects.create(
        organization_id=organization.pk, currency=currency, kind=kind, amount=amount, promo_amount=promo_delta,
        balance_after=balance.amount, reason=reason, reference=reference, actor=actor, actor_api_key=api_key,
        promo_grant=promo_grant, reverses=reverses, created_at=now, **(usage or {}),
    )
    _balance_moved(balance, entry_id=entry.pk, credited=amount > 0, now=now)
    balance.save()
    return entry


def _consume_promo_grants(organization_id: int, currency: str, consumed: Decimal) -> None:
    """Take `consumed` from the open grants, earliest expiry first. The caller holds the
    balance lock, so the grants cannot change underneath."""
    for grant in PromoGrant.objects.filter(
        organization_id=organization_id, currency=currency, expired_at__isnull=True, remaining__gt=0
    ).order_by("expires_at", "id"):
        if consumed <= 0:
            break
        take = min(grant.remaining, consumed)
        grant.remaining -= take
        consumed -= take
        grant.save(update_fields=["remaining"])


def _balance_moved(balance: Balance, *, entry_id: int | None, credited: bool, now: datetime) -> None:
    """Bookkeeping every balance change does (the set-based sync mirrors it in SQL):
    depletion time for the hibernation grace, warnings re-armed and auto top-up re-armed
    by a credit, auto resume once a credit brings the balance above zero."""
    balance.updated_at = now
    if balance.amount <= 0:
        balance.depleted_at = balance.depleted_at or now
    else:
        balance.depleted_at = None
    if credited:
        from credits.runway import still_crossed

        balance.warnings_sent = still_crossed(balance)
        if balance.amount > 0 and balance.hibernated_at and settings.CREDITS_RESUME_MODE == "automatic":
            org_id = balance.organization_id
            transaction.on_commit(lambda: _resume_later(org_id))
    elif balance.amount < balance_threshold(balance):
        org_id, currency = balance.organization_id, balance.currency
        transaction.on_commit(lambda: _auto_topup_later(org_id, currency))


def balance_threshold(balance: Balance) -> Decimal:
    """The auto top-up threshold, or -infinity when auto top-up is off (cached per call)."""
    cfg = AutoTopUpSettings.objects.filter(organization_id=balance.organization_id, enabled=True).first()
    return cfg.threshold if cfg else Decimal("-Infinity")


def _resume_later(organization_id: int) -> None:
    from credits.tasks import credits_resume_task

    credits_resume_task.delay(organization_id)


def _auto_topup_later(organization_id: int, currency: str) -> None:
    from credits.tasks import credits_auto_topup_check_task

    credits_auto_topup_check_task.delay(organization_id, currency)


@transaction.atomic
def ledger_reverse(
    *, entry: LedgerEntry, reason: str, actor: User | None = None, api_key: ApiKey | None = None
) -> LedgerEntry:
    """Correct a posted entry by appending its mirror image. Entries that moved
    promotional credit are corrected by expiring or granting promotional credit instead."""
    if entry.reverses_id is not None:
        raise Conflict("A reversal cannot itself be reversed; post an adjustment.")
    if entry.promo_amount != 0:
        raise Conflict("This entry moved promotional credit; grant or expire promotional credit instead.")
    if LedgerEntry.objects.filter(reverses=entry).exists():
        raise Conflict("This entry is already reversed.")
    reversal = ledger_post(
        organization=entry.organization, amount=-entry.amount, kind=entry.kind, currency=entry.currency,
        reason=_require_reason(reason), reference=f"reversal:{entry.pk}", actor=actor, api_key=api_key, reverses=entry,
    )
    audit_record("credits.entry_reversed", actor=actor, api_key=api_key, organization=entry.organization,
                 obj=reversal, reason=reason, changes={"reverses": entry.pk, "amount": -entry.amount})
    return reversal


@transaction.atomic
def credit_adjust(
    *, organization: Organization, amount: Decimal, reason: str, actor: User | None = None,
    api_key: ApiKey | None = None, reference: str = "",
) -> LedgerEntry:
    """A staff correction: positive credits, negative debits paid credit."""
    entry = ledger_post(organization=organization, amount=amount, kind=EntryKind.ADJUSTMENT, reason=reason,
                        reference=reference, actor=actor, api_key=api_key)
    audit_record("credits.adjusted", actor=actor, api_key=api_key, organization=organization, obj=entry,
                 reason=entry.reason, changes={"amount": entry.amount, "currency": entry.currency,
                                               "balance_after": entry.balance_after})
    return entry


# --- promotional credit ------------------------------------------------------


@transaction.atomic
def promo_grant(
    *, organization: Organization, amount: Decimal, expires_at: datetime, reason: str,
    actor: User | None = None, api_key: ApiKey | None = None, now: datetime | None = None,
) -> PromoGrant:
    amount = _require_amount(amount, positive=True)
    reason = _require_reason(reason)
    now = now or timezone.now()
    if expires_at <= now:
        raise DomainError("The expiry must be in the future.", field="expires_at")
    _lock_balance(organization.pk, organization.currency)
    grant = PromoGrant.objects.create(
        organization=organization, currency=organization.currency, amount=amount, remaining=amount,
        expires_at=expires_at, reason=reason, granted_by=actor, created_at=now,
    )
    ledger_post(organization=organization, amount=amount, kind=EntryKind.PROMO_GRANT, reason=reason,
                reference=f"promo-grant:{grant.pk}", actor=actor, api_key=api_key, promo_grant=grant, at=now)
    audit_record("credits.promo_granted", actor=actor, api_key=api_key, organization=organization, obj=grant,
                 reason=reason, changes={"amount": amount, "currency": grant.currency, "expires_at": expires_at})
    return grant


@transaction.atomic
def promo_expire(*, grant_id: int, now: datetime | None = None) -> LedgerEntry | None:
    """Remove what is left of one grant at its expiry. Safe to run twice or late: the
    grant is closed in the same transaction and the entry's reference is unique."""
    now = now or timezone.now()
    grant = PromoGrant.objects.filter(pk=grant_id).select_related("organization").first()
    if grant is None:
        raise NotFound("No such promotional grant.")
    _lock_balance(grant.organization_id, grant.currency)
    grant = PromoGrant.objects.select_for_update().get(pk=grant_id)
    if grant.expired_at is not None or grant.expires_at > now:
        return None
    left = grant.remaining
    entry = None
    if left > 0:
        entry = ledger_post(
            organization=grant.organization, amount=-left, kind=EntryKind.PROMO_EXPIRY, currency=grant.currency,
            reason=f"Promotional credit expired at {grant.expires_at:%Y-%m-%d %H:%M} UTC ({grant.reason})",
            reference=f"promo-expiry:{grant.pk}", promo_grant=grant, at=now,
        )
    grant.remaining = ZERO
    grant.expired_at = now
    grant.save(update_fields=["remaining", "expired_at"])
    return entry


def promo_expire_due(*, now: datetime | None = None, batch: int = 500) -> int:
    """Expire every grant past its expiry, one short transaction per grant (each locks
    one balance). Returns how many grants were closed."""
    now = now or timezone.now()
    ids = list(PromoGrant.objects.filter(expired_at__isnull=True, expires_at__lte=now)
               .order_by("expires_at").values_list("id", flat=True)[:batch])
    for grant_id in ids:
        promo_expire(grant_id=grant_id, now=now)
    return len(ids)


# --- top-ups ----------------------------------------------------------------


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
    amount = _require_amount(amount, positive=True)
    limit = settings.CREDITS_TOPUP_MAX_AMOUNT
    if amount > limit:
        raise DomainError(f"At most {limit} per top-up.", field="amount")
    if decimal_places(amount) > 6:
        raise DomainError("Too many decimal places.", field="amount")
    topup = TopUp.objects.create(
        organization=organization, source=TopUpSource.MANUAL, amount=amount, currency=organization.currency,
        request_key=request_key or None, requested_by=actor if actor is not None and actor.is_authenticated else None, requested_by_api_key=api_key,
    )
    audit_record("credits.topup_requested", actor=actor, api_key=api_key, organization=organization, obj=topup,
                 changes={"amount": amount, "currency": topup.currency})
    _dispatch_after_commit(topup)
    return topup


def _dispatch_after_commit(topup: TopUp) -> None:
    from credits.tasks import credits_topup_dispatch_task

    topup_id = topup.pk
    transaction.on_commit(lambda: credits_topup_dispatch_task.delay(topup_id))


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
            raise Conflict(f"Top-up #{topup.pk} is for {topup.amount} {topup.currency}, not {amount} {currency}.")
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
    return entry


def topup_retry_delay(attempts: int) -> timedelta:
    """Backoff after the n-th failed attempt: 5 min, 20 min, 80 min, … capped at a day."""
    return min(timedelta(minutes=5 * 4 ** max(attempts - 1, 0)), timedelta(days=1))


@transaction.atomic
def auto_topup_failed(*, topup_id: int, error: str, retryable: bool = True) -> TopUp:
    """Payments calls this when a top-up payment failed. Retryable failures are tried
    again with backoff up to `CREDITS_TOPUP_MAX_ATTEMPTS`; the customer is told."""
    topup = TopUp.objects.select_for_update().select_related("organization").filter(pk=topup_id).first()
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
    when = "We will not retry." if give_up else f"We will retry at {topup.next_attempt_at:%Y-%m-%d %H:%M} UTC."
    event = CreditEvent.objects.create(
        organization=topup.organization, kind=EventKind.TOPUP_FAILED,
        message=f"Top-up of {format_money(topup.amount, topup.currency)} failed: {topup.last_error}. {when}",
        data={"topup_id": topup.pk, "attempts": topup.attempts, "error": topup.last_error, "final": give_up},
    )
    audit_record("credits.topup_failed", organization=topup.organization, obj=topup, reason=topup.last_error,
                 changes={"attempts": topup.attempts, "final": give_up})
    notify.email_event_after_commit(event)
    return topup


def topups_due_for_retry(*, now: datetime | None = None, batch: int = 200) -> list[int]:
    now = now or timezone.now()
    return list(TopUp.objects.filter(status=TopUpStatus.FAILED, next_attempt_at__lte=now)
                .order_by("next_attempt_at").values_list("id", flat=True)[:batch])


# --- auto top-up --------------------------------------------------------------


@transaction.atomic
def auto_topup_configure(
    *, organization: Organization, enabled: bool, threshold: Decimal, amount: Decimal,
    monthly_cap: Decimal | None = None, actor: User | None = None, api_key: ApiKey | None = None,
) -> AutoTopUpSettings:
    for name, value in (("threshold", threshold), ("amount", amount)):
        if value < 0:
            raise DomainError("Must not be negative.", field=name)
    if enabled and amount <= 0:
        raise DomainError("Choose how much to top up.", field="amount")
    if enabled and amount > settings.CREDITS_TOPUP_MAX_AMOUNT:
        raise DomainError(f"At most {settings.CREDITS_TOPUP_MAX_AMOUNT} per top-up.", field="amount")
    if monthly_cap is not None and monthly_cap < amount:
        raise DomainError("The monthly cap must allow at least one top-up.", field="monthly_cap")
    cfg, _ = AutoTopUpSettings.objects.select_for_update().get_or_create(organization=organization)
    before = {"enabled": cfg.enabled, "threshold": cfg.threshold, "amount": cfg.amount, "monthly_cap": cfg.monthly_cap}
    cfg.enabled, cfg.threshold, cfg.amount, cfg.monthly_cap = enabled, threshold, amount, monthly_cap
    cfg.save()
    after = {"enabled": enabled, "threshold": threshold, "amount": amount, "monthly_cap": monthly_cap}
    audit_record("credits.auto_topup_configured", actor=actor, api_key=api_key, organization=organization, obj=cfg,
                 changes={k: [before[k], after[k]] for k in after if before[k] != after[k]})
    if enabled:
        org_id, currency = organization.pk, organization.currency
        transaction.on_commit(lambda: _auto_topup_later(org_id, currency))
    return cfg


def _crossing_key(last_entry_id: int) -> str:
    """An auto top-up's crossing: named by the last ledger entry when it started."""
    return f"crossing-after-entry:{last_entry_id}"


def _crossing_entry(key: str | None) -> int | None:
    if key and key.startswith("crossing-after-entry:"):
        return int(key.rsplit(":", 1)[1])
    return None


def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@transaction.atomic
def auto_topup_check(*, organization_id: int, currency: str, now: datetime | None = None) -> TopUp | None:
    """Start one auto top-up if the balance is below the threshold and this crossing has
    none yet. A crossing ends only when the balance is back at or above the threshold: a
    top-up too small to lift it (or one capped or failing) does not start another while
    the balance stays below. A crossing is named by the last ledger entry when its top-up
    started (unique per organisation), so concurrent checks start one attempt."""
    now = now or timezone.now()
    cfg = AutoTopUpSettings.objects.filter(organization_id=organization_id, enabled=True).first()
    if cfg is None:
        return None
    balance = _lock_balance(organization_id, currency)
    if balance.amount >= cfg.threshold or currency != cfg.organization.currency:
        return None
    entries = LedgerEntry.objects.filter(organization_id=organization_id, currency=currency)
    # A top-up under earlier settings, or one skipped for last month's cap, does not answer
    # this crossing: saving the settings starts afresh, and this month's cap is fresh.
    last_key = (TopUp.objects.filter(organization_id=organization_id, currency=currency, source=TopUpSource.AUTO,
                                     created_at__gte=cfg.updated_at)
                .exclude(status=TopUpStatus.ABANDONED, created_at__lt=_month_start(now))
                .order_by("-id").values_list("crossing_key", flat=True).first())
    answered = _crossing_entry(last_key)
    if answered is not None and not entries.filter(id__gt=answered, balance_after__gte=cfg.threshold).exists():
        return None  # still the crossing the last auto top-up answered
    key = _crossing_key(entries.order_by("-id").values_list("id", flat=True).first() or 0)
    if TopUp.objects.filter(organization_id=organization_id, crossing_key=key).exists():
        return None
    spent = (TopUp.objects.filter(
        organization_id=organization_id, source=TopUpSource.AUTO, created_at__gte=_month_start(now),
        status__in=[TopUpStatus.PENDING, TopUpStatus.FAILED, TopUpStatus.SUCCEEDED],
    ).aggregate(s=Sum("amount"))["s"] or ZERO)
    capped = cfg.monthly_cap is not None and spent + cfg.amount > cfg.monthly_cap
    cap = format_money(cfg.monthly_cap, currency) if cfg.monthly_cap is not None else ""
    topup = TopUp.objects.create(
        organization_id=organization_id, source=TopUpSource.AUTO, amount=cfg.amount, currency=currency,
        crossing_key=key, created_at=now,
        status=TopUpStatus.ABANDONED if capped else TopUpStatus.PENDING,
        last_error=(f"Monthly cap of {cap} reached "
                    f"({format_money(spent, currency)} used).") if capped else "",
    )
    if capped:
        event = CreditEvent.objects.create(
            organization_id=organization_id, kind=EventKind.AUTO_TOPUP_CAPPED, created_at=now,
            message=f"Auto top-up skipped: this month's cap of {cap} is reached.",
            data={"topup_id": topup.pk, "cap": str(cfg.monthly_cap), "used": str(spent)},
        )
        notify.email_event_after_commit(event)
        return topup
    CreditEvent.objects.create(
        organization_id=organization_id, kind=EventKind.AUTO_TOPUP_STARTED, created_at=now,
        message=(f"Balance {format_money(balance.amount, currency)} fell below {format_money(cfg.threshold, currency)}: "
                 f"topping up {format_money(cfg.amount, currency)}."),
        data={"topup_id": topup.pk, "amount": str(cfg.amount), "balance": str(balance.amount)},
    )
    _dispatch_after_commit(topup)
    return topup
