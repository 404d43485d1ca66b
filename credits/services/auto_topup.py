"""Auto top-up: its settings and the check that starts one top-up per threshold crossing.

A crossing begins when the balance falls below the threshold and ends only when it is
back at or above it; each crossing gets at most one automatic `TopUp`, named by the last
ledger entry when it started (`crossing_key`, unique per organisation), so concurrent
checks start one attempt. A monthly cap turns a top-up that would exceed it into an
abandoned one and a customer event. The top-up then runs the ordinary path in
`credits.services.topups`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiKey, Organization, User
from core.errors import DomainError
from core.money import format_money
from credits import notify
from credits.models import (
    ZERO,
    AutoTopUpSettings,
    CreditEvent,
    EventKind,
    LedgerEntry,
    TopUp,
    TopUpSource,
    TopUpStatus,
)
from credits.services.ledger import _auto_topup_later, _lock_balance
from credits.services.topups import _dispatch_after_commit


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
        raise DomainError(f"At most {format_money(settings.CREDITS_TOPUP_MAX_AMOUNT, organization.currency)} per top-up.",
                          field="amount")
    if monthly_cap is not None and monthly_cap < amount:
        raise DomainError("The monthly cap must allow at least one top-up.", field="monthly_cap")
    cfg, _ = AutoTopUpSettings.objects.select_for_update().get_or_create(organization=organization)
    before = {"enabled": cfg.enabled, "threshold": cfg.threshold, "amount": cfg.amount, "monthly_cap": cfg.monthly_cap}
    after = {"enabled": enabled, "threshold": threshold, "amount": amount, "monthly_cap": monthly_cap}
    changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if not changes:
        return cfg  # a resubmitted form: nothing re-armed, nothing audited
    cfg.enabled, cfg.threshold, cfg.amount, cfg.monthly_cap = enabled, threshold, amount, monthly_cap
    cfg.rearmed_at = timezone.now()
    cfg.save()
    audit_record("credits.auto_topup_configured", actor=actor, api_key=api_key, organization=organization, obj=cfg,
                 changes=changes)
    if enabled:
        _auto_topup_later(organization.pk, organization.currency)
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


def _crossing_answered(cfg: AutoTopUpSettings, currency: str, now: datetime) -> bool:
    """Whether the balance is still in the crossing the last auto top-up answered. A top-up
    under earlier settings, or one skipped for last month's cap, does not answer it: a real
    change of the settings starts afresh, and this month's cap is fresh."""
    last_key = (TopUp.objects.filter(organization_id=cfg.organization_id, currency=currency, source=TopUpSource.AUTO,
                                     created_at__gte=cfg.rearmed_at)
                .exclude(status=TopUpStatus.ABANDONED, created_at__lt=_month_start(now))
                .order_by("-id").values_list("crossing_key", flat=True).first())
    answered = _crossing_entry(last_key)
    return answered is not None and not LedgerEntry.objects.filter(
        organization_id=cfg.organization_id, currency=currency, id__gt=answered, balance_after__gte=cfg.threshold,
    ).exists()


def _spent_this_month(organization_id: int, now: datetime) -> Decimal:
    return (TopUp.objects.filter(
        organization_id=organization_id, source=TopUpSource.AUTO, created_at__gte=_month_start(now),
        status__in=[TopUpStatus.PENDING, TopUpStatus.FAILED, TopUpStatus.SUCCEEDED],
    ).aggregate(s=Sum("amount"))["s"] or ZERO)


def _in_flight(organization_id: int) -> bool:
    return TopUp.objects.filter(organization_id=organization_id, source=TopUpSource.AUTO,
                                status__in=[TopUpStatus.PENDING, TopUpStatus.FAILED]).exists()


def auto_topup_outlook(*, organization_id: int, currency: str, balance_before: Decimal, balance_after: Decimal,
                       now: datetime | None = None) -> dict | None:
    """What auto top-up would do if the balance moved from `balance_before` to
    `balance_after` now (the console's confirmation step): None when it would not fire,
    else {"amount", "capped", "threshold"}. Read-only; `auto_topup_check` decides for real."""
    now = now or timezone.now()
    cfg = AutoTopUpSettings.objects.filter(organization_id=organization_id, enabled=True).first()
    if cfg is None or balance_after >= cfg.threshold or currency != cfg.organization.currency:
        return None
    if _in_flight(organization_id):
        return None
    if balance_before < cfg.threshold and _crossing_answered(cfg, currency, now):
        return None
    capped = cfg.monthly_cap is not None and _spent_this_month(organization_id, now) + cfg.amount > cfg.monthly_cap
    return {"amount": cfg.amount, "capped": capped, "threshold": cfg.threshold}


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
    # One automatic top-up under way at a time, whatever the crossing (also a database
    # constraint, credits_topup_one_auto_in_flight): its outcome decides what comes next.
    if _in_flight(organization_id):
        return None
    if _crossing_answered(cfg, currency, now):
        return None  # still the crossing the last auto top-up answered
    entries = LedgerEntry.objects.filter(organization_id=organization_id, currency=currency)
    key = _crossing_key(entries.order_by("-id").values_list("id", flat=True).first() or 0)
    if TopUp.objects.filter(organization_id=organization_id, crossing_key=key).exists():
        return None
    spent = _spent_this_month(organization_id, now)
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
