"""Promotional credit: granting it and expiring what is left of a grant.

A grant is posted to the ledger as a `promo_grant` entry and tracked in `PromoGrant.
remaining`; usage consumes open grants earliest expiry first (`ledger._consume_promo_
grants`). Expiry takes the remainder off with a `promo_expiry` entry whose reference is
unique per grant, under the balance lock, so running it twice or late changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiKey, Organization, User
from core.errors import DomainError, NotFound
from credits.models import ZERO, EntryKind, LedgerEntry, PromoGrant
from credits.services.ledger import _lock_balance, _require_amount, _require_reason, ledger_post


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
