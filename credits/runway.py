"""Burn rate, runway and the warnings sent when the runway or the balance crosses a threshold.

The burn rate is read from the usage entries of the ledger over a trailing window
(`CREDITS_BURN_WINDOW`), divided by the metered time they cover since the earliest of
them, so a catch-up after an outage (hours of usage in one entry) is not mistaken for a
spike, and a fleet started five minutes ago is not diluted over the whole window.

A warning is identified by a key ("runway:24", "balance:10"). Keys already sent are kept
on the balance; a crossing sends once, and only a credit (top-up, grant, adjustment)
re-arms the keys it lifts the balance above.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q, Sum
from django.utils import timezone

from accounts.models import BillingMode
from core.money import format_money, parse_decimal, round_money, round_stored
from credits import notify
from credits.models import ZERO, Balance, CreditEvent, EntryKind, EventKind, LedgerEntry

HOURS = Decimal(3600)
# Balances are updated in batches of this many rows (one UPDATE … CASE per batch).
BURN_UPDATE_BATCH = 2000


def runway_hours(amount: Decimal, burn_rate_per_hour: Decimal) -> Decimal | None:
    """Hours left at the burn rate; None when nothing is burning."""
    if amount <= 0:
        return ZERO
    if burn_rate_per_hour <= 0:
        return None
    return (amount / burn_rate_per_hour).quantize(Decimal("0.0001"))


def crossed_keys(amount: Decimal, burn_rate_per_hour: Decimal) -> list[str]:
    """Every threshold the balance is below, most severe first."""
    keys = []
    runway = runway_hours(amount, burn_rate_per_hour)
    if runway is not None:
        keys += [f"runway:{h}" for h in sorted(settings.CREDITS_RUNWAY_WARNING_HOURS) if runway < h]
    low = settings.CREDITS_LOW_BALANCE_WARNING
    if low is not None and amount < low:
        keys.append(f"balance:{low}")
    return keys


def still_crossed(balance: Balance) -> list[str]:
    """After a credit: keep the sent keys the balance is still below, re-arm the rest."""
    crossed = set(crossed_keys(balance.amount, balance.burn_rate_per_hour))
    return [k for k in balance.warnings_sent if k in crossed]


def describe_runway(hours: Decimal | None) -> str:
    """'about 3 days left at your current usage'."""
    if hours is None:
        return "nothing is running, so your credit is not being used"
    if hours <= 0:
        return "no credit left"
    if hours < 1:
        minutes = max(int(hours * 60), 1)
        return f"about {minutes} minute{'s' if minutes != 1 else ''} left at your current usage"
    if hours < 48:
        h = int(hours.to_integral_value())
        return f"about {h} hour{'s' if h != 1 else ''} left at your current usage"
    days = int((hours / 24).to_integral_value())
    return f"about {days} days left at your current usage"


def compute_burn_rates(*, now: datetime | None = None) -> int:
    """Set the burn rate of every balance from its recent usage entries; balances with
    no recent usage go to zero. One aggregate query plus batched updates."""
    now = now or timezone.now()
    window = settings.CREDITS_BURN_WINDOW
    since = now - window
    rows = (
        LedgerEntry.objects.filter(kind=EntryKind.USAGE, period_end__gt=since)
        .values("organization_id", "currency")
        .annotate(total=Sum("amount"), first=Min("period_start"))
    )
    rates: dict[tuple[int, str], Decimal] = {}
    for row in rows:
        start = row["first"] or since
        seconds = Decimal(max((now - start).total_seconds(), 60))
        rates[(row["organization_id"], row["currency"])] = round_stored(-(row["total"] or ZERO) * HOURS / seconds)
    changed = []
    for balance in Balance.objects.filter(Q(burn_rate_per_hour__gt=0) | Q(
            organization_id__in={org for org, _ in rates})).only("id", "organization_id", "currency", "burn_rate_per_hour"):
        rate = max(rates.get((balance.organization_id, balance.currency), ZERO), ZERO)
        balance.burn_rate_per_hour = rate
        balance.burn_computed_at = now
        changed.append(balance)
    # Only the burn-rate columns are written, so a concurrent ledger post (which owns
    # amount/promo_amount under its lock) is never overwritten.
    Balance.objects.bulk_update(changed, ["burn_rate_per_hour", "burn_computed_at"], batch_size=BURN_UPDATE_BATCH)
    return len(changed)


@dataclass(frozen=True)
class Warning:
    key: str
    message: str


def warning_text(key: str, amount: Decimal, currency: str, burn: Decimal) -> str:
    kind, value = key.split(":", 1)
    if kind == "runway":
        return (f"Your credit of {format_money(amount, currency)} lasts less than {value} hours at your current "
                f"usage ({format_money(burn, currency)} an hour): {describe_runway(runway_hours(amount, burn))}.")
    return (f"Your credit balance of {format_money(amount, currency)} is below "
            f"{format_money(parse_decimal(value), currency)}.")


def send_warnings(*, now: datetime | None = None) -> int:
    """Send each newly crossed threshold once. Candidates are read without locks; each
    one is re-checked under its balance lock, so a concurrent top-up wins."""
    now = now or timezone.now()
    candidates = []
    for b in Balance.objects.filter(organization__billing_mode=BillingMode.PREPAID).only(
            "id", "amount", "burn_rate_per_hour", "warnings_sent"):
        if set(crossed_keys(b.amount, b.burn_rate_per_hour)) - set(b.warnings_sent):
            candidates.append(b.pk)
    for balance_id in candidates:
        _warn_one(balance_id, now)
    return len(candidates)


@transaction.atomic
def _warn_one(balance_id: int, now: datetime) -> None:
    balance = Balance.objects.select_for_update(of=("self",)).select_related("organization").get(pk=balance_id)
    crossed = crossed_keys(balance.amount, balance.burn_rate_per_hour)
    new = [k for k in crossed if k not in balance.warnings_sent]
    if not new:
        return
    # One message per crossing: the most severe new key speaks for the others.
    key = new[0]
    kind = EventKind.RUNWAY_WARNING if key.startswith("runway:") else EventKind.BALANCE_WARNING
    event = CreditEvent.objects.create(
        organization=balance.organization, kind=kind, created_at=now,
        message=warning_text(key, balance.amount, balance.currency, balance.burn_rate_per_hour),
        data={"keys": new, "balance": str(balance.amount), "currency": balance.currency,
              "burn_rate_per_hour": str(balance.burn_rate_per_hour),
              "runway_hours": str(runway_hours(balance.amount, balance.burn_rate_per_hour))},
    )
    balance.warnings_sent = [*balance.warnings_sent, *new]
    balance.save(update_fields=["warnings_sent"])
    from webhooks.services import emit

    runway = runway_hours(balance.amount, balance.burn_rate_per_hour)
    emit(type="credit.low", organization=balance.organization_id, occurred_at=now, data={
        "thresholds": new, "currency": balance.currency, "balance": str(round_money(balance.amount, balance.currency)),
        "burn_rate_per_hour": str(balance.burn_rate_per_hour.normalize()),
        "runway_hours": None if runway is None else str(runway)})
    notify.email_event_after_commit(event)
