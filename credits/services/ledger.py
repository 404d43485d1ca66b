"""The credit ledger: posting, reversing and adjusting entries, and the cached balance.

`ledger_post` is the one way an amount reaches a balance: it appends a `LedgerEntry`
and moves `Balance.amount` (and `promo_amount`) with it under the balance row lock, so
`balance_after` forms one unbroken chain. A non-empty `reference` makes a post
idempotent. Entries are never edited: a correction is a reversal or an adjustment.

Lock order, everywhere: the `Organization` row if at all (payments' `_lock` takes it with
the payment), then the `Balance` row (`_lock_balance`), then the rows that hang off it
(promotional grants, top-ups). A credits lock that reads the organisation through
`select_related` names `of=("self",)`, or PostgreSQL locks the organisation row too, in
the opposite order to a payment being credited (a deadlock: payments/tests/test_lock_order.py). The set-based credit sync locks many balance
rows in ascending id order, so two writers never wait on each other in a cycle. The
package's other modules take the lock and check amounts and reasons through the helpers
here (`_lock_balance`, `_require_amount`, `_require_reason`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiKey, Organization, User
from core import metrics
from core.errors import Conflict, DomainError, Forbidden
from core.money import format_money, minor_unit_exponent, round_money
from credits.models import (
    PROMO_CONSUMING_KINDS,
    ZERO,
    AutoTopUpSettings,
    Balance,
    EntryKind,
    LedgerEntry,
    PromoGrant,
)

MAX_REASON_LENGTH = 2000


def _lock_balance(organization_id: int, currency: str) -> Balance:
    """The balance row, locked until the transaction ends. Created on first use; the
    insert ignores a concurrent creator, then everybody queues on the same row."""
    balance = Balance.objects.select_for_update().filter(organization_id=organization_id, currency=currency).first()
    if balance is None:
        Balance.objects.bulk_create([Balance(organization_id=organization_id, currency=currency)], ignore_conflicts=True)
        balance = Balance.objects.select_for_update().get(organization_id=organization_id, currency=currency)
    return balance


def adjustment_staff_limit(currency: str) -> Decimal:
    """The largest staff adjustment (either sign) a non-superuser may post in `currency`."""
    limits = settings.CREDITS_ADJUSTMENT_STAFF_LIMITS
    return limits.get(currency, limits["default"])


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
    metrics.ledger_posted([(currency, kind, amount)])
    return entry


@dataclass(frozen=True)
class Post:
    """One entry of `ledger_post_many`: what `ledger_post` takes, for one organisation."""

    organization: Organization
    amount: Decimal
    kind: str
    reason: str
    reference: str


@transaction.atomic
def ledger_post_many(posts: list[Post], *, at: datetime | None = None) -> None:
    """`ledger_post` for many organisations at once (invoice finalization draws a whole
    chunk's): the balances locked in ascending id order in one query, the references
    already posted found in one, the entries in one INSERT and the balances moved in one
    UPDATE, each with the bookkeeping of `_balance_moved`. A post that needs more (a
    promotional part to consume or grant, a second post for the same balance) goes
    through `ledger_post` itself, after the others."""
    if not posts:
        return
    now = at or timezone.now()
    for post in posts:
        _require_amount(post.amount)
        _require_reason(post.reason)
        if post.kind not in EntryKind.values:
            raise DomainError(f"Unknown ledger entry kind {post.kind!r}.", field="kind")
    keys = {(p.organization.pk, p.organization.currency) for p in posts}
    Balance.objects.bulk_create([Balance(organization_id=o, currency=c) for o, c in sorted(keys)], ignore_conflicts=True)
    org_ids = sorted({o for o, _ in keys})
    balances = {(b.organization_id, b.currency): b for b in
                Balance.objects.select_for_update().filter(organization_id__in=org_ids).order_by("id")}
    posted = set(LedgerEntry.objects.filter(organization_id__in=org_ids, reference__in=[p.reference for p in posts])
                 .exclude(reference="").values_list("organization_id", "reference"))
    thresholds = dict(AutoTopUpSettings.objects.filter(organization_id__in=org_ids, enabled=True)
                      .values_list("organization_id", "threshold"))
    entries, moved, slow, seen = [], {}, [], set()
    for post in posts:
        key = (post.organization.pk, post.organization.currency)
        if (key[0], post.reference) in posted and post.reference:
            continue
        balance = balances[key]
        if (key in seen or (post.amount < 0 and balance.promo_amount > 0 and post.kind in PROMO_CONSUMING_KINDS)
                or post.kind in (EntryKind.PROMO_GRANT, EntryKind.PROMO_EXPIRY)):
            slow.append(post)
            continue
        seen.add(key)
        balance.amount += post.amount
        entries.append(LedgerEntry(
            organization_id=key[0], currency=key[1], kind=post.kind, amount=post.amount, promo_amount=ZERO,
            balance_after=balance.amount, reason=post.reason.strip(), reference=post.reference, created_at=now,
        ))
        _balance_moved(balance, entry_id=None, credited=post.amount > 0, now=now,
                       threshold=thresholds.get(key[0], Decimal("-Infinity")))
        moved[balance.pk] = balance
    LedgerEntry.objects.bulk_create(entries, batch_size=2000)
    metrics.ledger_posted((e.currency, e.kind, e.amount) for e in entries)
    if moved:
        values = ", ".join(["(%s::bigint, %s::numeric, %s::timestamptz, %s::timestamptz, %s::jsonb)"] * len(moved))
        table = connection.ops.quote_name(Balance._meta.db_table)
        with connection.cursor() as cur:
            cur.execute(
                f"UPDATE {table} b SET amount = v.amount, depleted_at = v.depleted_at, updated_at = v.updated_at,"  # noqa: S608 - the model's table, placeholders
                " warnings_sent = v.warnings_sent"
                f" FROM (VALUES {values}) AS v(id, amount, depleted_at, updated_at, warnings_sent) WHERE b.id = v.id",
                [x for b in moved.values()
                 for x in (b.pk, b.amount, b.depleted_at, b.updated_at, json.dumps(b.warnings_sent))],
            )
    for post in slow:
        ledger_post(organization=post.organization, amount=post.amount, kind=post.kind, reason=post.reason,
                    reference=post.reference, at=now)


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


def _balance_moved(balance: Balance, *, entry_id: int | None, credited: bool, now: datetime,
                   threshold: Decimal | None = None) -> None:
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
            _resume_later(balance.organization_id)
    elif balance.amount < (balance_threshold(balance) if threshold is None else threshold):
        _auto_topup_later(balance.organization_id, balance.currency)


def balance_threshold(balance: Balance) -> Decimal:
    """The auto top-up threshold, or -infinity when auto top-up is off (cached per call)."""
    cfg = AutoTopUpSettings.objects.filter(organization_id=balance.organization_id, enabled=True).first()
    return cfg.threshold if cfg else Decimal("-Infinity")


def _resume_later(organization_id: int) -> None:
    """After commit, through the outbox (core.outbox): survives a broker outage."""
    from core import outbox

    outbox.enqueue("credits.resume", organization_id)


def _auto_topup_later(organization_id: int, currency: str) -> None:
    from core import outbox

    outbox.enqueue("credits.auto_topup_check", organization_id, currency)


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
    """A staff correction: positive credits, negative debits paid credit.

    In the currency's precision, and beyond the staff limit
    (`CREDITS_ADJUSTMENT_STAFF_LIMITS`) only a superuser may move it: a person or key
    asking for more is refused (403). Internal callers (no actor, no key) are not limited.
    A `reference` posted before returns its entry and writes no second audit row, so a
    double submit of the console's confirmation posts once."""
    amount = _require_amount(amount)
    currency = organization.currency
    if round_money(amount, currency) != amount:
        raise DomainError(f"{currency} amounts have at most {minor_unit_exponent(currency)} decimal places.",
                          field="amount")
    person = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    if (person is not None or api_key is not None) and not (person is not None and person.is_superuser):
        limit = adjustment_staff_limit(currency)
        if abs(amount) > limit:
            raise Forbidden(f"Adjustments above {format_money(limit, currency)} need a superuser.", field="amount")
    if reference:
        _lock_balance(organization.pk, currency)  # replays queue here, then find the first entry
        existing = LedgerEntry.objects.filter(organization_id=organization.pk, reference=reference).first()
        if existing is not None:
            return existing
    entry = ledger_post(organization=organization, amount=amount, kind=EntryKind.ADJUSTMENT, reason=reason,
                        reference=reference, actor=actor, api_key=api_key)
    audit_record("credits.adjusted", actor=actor, api_key=api_key, organization=organization, obj=entry,
                 reason=entry.reason, changes={"amount": entry.amount, "currency": entry.currency,
                                               "balance_after": entry.balance_after, "reference": entry.reference})
    return entry
