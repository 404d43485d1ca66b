"""The zero-balance ladder: what follows a hibernation for lack of credit.

- Start: `hibernation.hibernate` calls `start` in its transaction, so every hibernation
  for lack of credit has a `HibernationLadder` (reason `credit_exhausted`) from that
  minute. Budgets' hard caps hibernate without touching `Balance.hibernated_at` and
  without a ladder: they never lead to deletion.
- Notices: on each of the ladder's `notice_days` (days after `started_at`) one
  `credits.deletion_notice` event (emailed) and a `resource.deletion_scheduled` webhook,
  both naming the deletion date. A run that finds several notices due at once (the task
  was down) sends the latest only and marks the older ones done: one email, never two
  for the same day.
- Deletion: from `deletion_due_at` on (never before), one `delete_disks` request for the
  credit-hibernated resources still hibernated, in the signed provisioning outbox, with
  a `credits.deletion_requested` event and a `resource.deletion_requested` webhook.
- Cancel: `hibernation.resume` (a top-up lifting the balance above zero, or a click in
  manual mode) calls `cancel` in its transaction. While the balance is above zero and
  waiting for a manual resume, the ladder holds: no notice, no deletion.
- Each step is one transaction under the balance's lock, then the ladder's (the same
  order as hibernate and resume), re-checked there: a rerun, two workers or a crash
  between steps send each notice and each deletion once. `advance_due` is the beat
  task's entry (every 15 minutes; late runs catch up).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Organization
from core.formatting import format_date, format_datetime
from credits import notify
from credits.models import (
    Balance,
    CreditEvent,
    EventKind,
    HibernationLadder,
    LadderPolicy,
    LadderReason,
    LadderStatus,
    ProvisioningAction,
    ProvisioningRequest,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    notice_days: list[int]
    delete_after_days: int | None  # None: never delete


def policy_for(organization_id: int) -> Policy:
    """The organisation's `LadderPolicy`, else the settings' defaults."""
    row = LadderPolicy.objects.filter(organization_id=organization_id).first()
    if row is not None:
        return Policy(sorted(row.notice_days), row.delete_after_days)
    days = settings.CREDITS_LADDER_DELETE_AFTER_DAYS
    return Policy(sorted(settings.CREDITS_LADDER_NOTICE_DAYS), days or None)


def start(*, balance: Balance, started_at: datetime) -> HibernationLadder:
    """The ladder of `balance`'s current hibernation (caller holds the balance's lock)."""
    assert balance.hibernated_at is not None
    policy = policy_for(balance.organization_id)
    days = [d for d in policy.notice_days if policy.delete_after_days is None or d < policy.delete_after_days]
    due = started_at + timedelta(days=policy.delete_after_days) if policy.delete_after_days else None
    return HibernationLadder.objects.create(
        organization_id=balance.organization_id, balance=balance, reason=LadderReason.CREDIT_EXHAUSTED,
        hibernated_at=balance.hibernated_at, started_at=started_at, resource_ids=list(balance.hibernated_resources),
        notice_days=days, deletion_due_at=due, created_at=started_at,
    )


def cancel(*, balance: Balance, now: datetime) -> HibernationLadder | None:
    """End the balance's active ladder: its resources resumed (caller holds the lock)."""
    ladder = HibernationLadder.objects.select_for_update().filter(balance=balance, status=LadderStatus.ACTIVE).first()
    if ladder is None:
        return None
    ladder.status = LadderStatus.CANCELLED
    ladder.ended_at = now
    ladder.save(update_fields=["status", "ended_at"])
    return ladder


def next_notice_at(ladder: HibernationLadder) -> datetime | None:
    later = [d for d in ladder.notice_days if d not in ladder.notices_done]
    return ladder.started_at + timedelta(days=min(later)) if later else None


def step_label(ladder: HibernationLadder, now: datetime) -> str:
    """Where the ladder stands, for staff: "Day 3: day-1 notice sent; next: day-7 notice on
    2026-11-24 06:52 UTC; deletion on 2026-12-01 06:52 UTC"."""
    if ladder.status == LadderStatus.DELETION_REQUESTED:
        return f"Deletion requested {format_datetime(ladder.ended_at)}"
    if ladder.status != LadderStatus.ACTIVE:
        return f"Ended ({ladder.get_status_display().lower()}) {format_datetime(ladder.ended_at)}"
    day = max(0, (now - ladder.started_at).days)
    done = ", ".join(f"day-{d}" for d in sorted(ladder.notices_done))
    parts = [f"Day {day}: " + (f"{done} notice{'s' if len(ladder.notices_done) > 1 else ''} sent" if done
                               else "no notice yet")]
    later = [d for d in ladder.notice_days if d not in ladder.notices_done]
    if later:
        parts.append(f"next: day-{min(later)} notice on {format_datetime(next_notice_at(ladder))}")
    parts.append(f"deletion on {format_datetime(ladder.deletion_due_at)}" if ladder.deletion_due_at
                 else "never deleted")
    return "; ".join(parts)


def _due_notice_days(ladder: HibernationLadder, now: datetime) -> list[int]:
    return [d for d in ladder.notice_days
            if d not in ladder.notices_done and ladder.started_at + timedelta(days=d) <= now]


def adopt_orphans(*, now: datetime) -> int:
    """Hibernations older than the ladder (no ladder for their `hibernated_at`) get one
    starting now, so their customers get every notice before any deletion."""
    made = 0
    own = HibernationLadder.objects.filter(balance=OuterRef("pk"), hibernated_at=OuterRef("hibernated_at"))
    for balance_id in (Balance.objects.filter(hibernated_at__isnull=False).filter(~Exists(own))
                       .values_list("id", flat=True)):
        with transaction.atomic():
            balance = Balance.objects.select_for_update().filter(pk=balance_id, hibernated_at__isnull=False).first()
            if balance is None or balance.hibernated_at is None or HibernationLadder.objects.filter(
                    balance=balance, hibernated_at=balance.hibernated_at).exists():
                continue  # resumed meanwhile, or its ladder ended (deletion requested)
            try:
                with transaction.atomic():
                    start(balance=balance, started_at=now)
            except IntegrityError:
                continue
            made += 1
    return made


def advance_due(*, now: datetime | None = None) -> int:
    """Every step that is due, for every active ladder. Returns the steps taken."""
    now = now or timezone.now()
    adopt_orphans(now=now)
    steps = 0
    for ladder in HibernationLadder.objects.filter(status=LadderStatus.ACTIVE).order_by("id"):
        deletion_due = ladder.deletion_due_at is not None and ladder.deletion_due_at <= now
        if deletion_due or _due_notice_days(ladder, now):
            steps += bool(advance(ladder_id=ladder.pk, now=now))
    return steps


@transaction.atomic
def advance(*, ladder_id: int, now: datetime | None = None) -> str:
    """Take the ladder's due step, if any: "" (nothing), "notice" or "deletion"."""
    now = now or timezone.now()
    balance_id = HibernationLadder.objects.filter(pk=ladder_id).values_list("balance_id", flat=True).first()
    if balance_id is None:
        return ""
    balance = Balance.objects.select_for_update(of=("self",)).select_related("organization").get(pk=balance_id)
    ladder = HibernationLadder.objects.select_for_update().get(pk=ladder_id)
    if ladder.status != LadderStatus.ACTIVE or ladder.reason != LadderReason.CREDIT_EXHAUSTED:
        return ""
    if balance.hibernated_at != ladder.hibernated_at:  # resumed without passing through cancel
        ladder.status, ladder.ended_at = LadderStatus.CANCELLED, now
        ladder.save(update_fields=["status", "ended_at"])
        return ""
    if balance.amount > 0:
        return ""  # topped up, waiting for a manual resume: hold
    if ladder.deletion_due_at is not None and ladder.deletion_due_at <= now:
        _request_deletion(ladder, balance, now)
        return "deletion"
    due = _due_notice_days(ladder, now)
    if not due:
        return ""
    _notice(ladder, balance, max(due), now)
    ladder.notices_done = sorted({*ladder.notices_done, *due})
    ladder.last_notice_at = now
    ladder.save(update_fields=["notices_done", "last_notice_at"])
    return "notice"


def _still_hibernated(balance: Balance) -> list[int]:
    from usage.models import Resource

    return list(Resource.objects.filter(pk__in=balance.hibernated_resources, state="hibernated")
                .order_by("id").values_list("id", flat=True))


def _notice(ladder: HibernationLadder, balance: Balance, day: int, now: datetime) -> None:
    org = balance.organization
    ids = _still_hibernated(balance)
    since = format_datetime(ladder.hibernated_at)
    if ladder.deletion_due_at is not None:
        what = (f"Their disks will be deleted on {format_datetime(ladder.deletion_due_at)} unless a top-up "
                f"brings the balance above zero before then.")
    else:
        what = "Their disks are kept; top up to resume them."
    event = CreditEvent.objects.create(
        organization=org, kind=EventKind.DELETION_NOTICE, created_at=now,
        message=f"{len(ids)} resource(s) have been hibernated since {since} because credit ran out. {what}",
        data={"ladder_id": ladder.pk, "day": day, "resource_ids": ids,
              "deletion_scheduled_at": ladder.deletion_due_at.isoformat() if ladder.deletion_due_at else None},
    )
    from webhooks.services import emit

    emit(type="resource.deletion_scheduled", organization=org, occurred_at=now,
         dedup_key=f"ladder:{ladder.pk}:notice:{day}",
         data={"resource_ids": ids, "hibernated_at": ladder.hibernated_at.isoformat(), "notice_day": day,
               "deletion_scheduled_at": ladder.deletion_due_at.isoformat() if ladder.deletion_due_at else None})
    notify.email_event_after_commit(event)


def _request_deletion(ladder: HibernationLadder, balance: Balance, now: datetime) -> None:
    from credits.hibernation import provisioning_outbox

    org: Organization = balance.organization
    ids = _still_hibernated(balance)
    reason = (f"Hibernated for lack of credit since {format_date(ladder.hibernated_at)}; "
              f"deletion scheduled for {format_date(ladder.deletion_due_at)}")
    request: ProvisioningRequest = provisioning_outbox(org, ProvisioningAction.DELETE_DISKS, ids, reason, now)
    ladder.status = LadderStatus.DELETION_REQUESTED
    ladder.deletion_request = request
    ladder.ended_at = now
    ladder.save(update_fields=["status", "deletion_request", "ended_at"])
    # Nothing left to resume: a later top-up must not ask the platform to start them.
    balance.hibernated_resources = []
    balance.save(update_fields=["hibernated_resources"])
    event = CreditEvent.objects.create(
        organization=org, kind=EventKind.DELETION_REQUESTED, created_at=now,
        message=f"The disks of {len(ids)} resource(s) hibernated since {format_datetime(ladder.hibernated_at)} "
                f"are being deleted: the balance stayed at or below zero until "
                f"{format_datetime(ladder.deletion_due_at)}.",
        data={"ladder_id": ladder.pk, "resource_ids": ids, "provisioning_request_id": request.pk},
    )
    audit_record("credits.deletion_requested", organization=org, obj=ladder, reason=reason,
                 changes={"resource_ids": ids, "provisioning_request_id": request.pk})
    from webhooks.services import emit

    emit(type="resource.deletion_requested", organization=org, occurred_at=now, dedup_key=f"ladder:{ladder.pk}:delete",
         data={"resource_ids": ids, "hibernated_at": ladder.hibernated_at.isoformat(),
               "provisioning_request_id": request.pk})
    notify.email_event_after_commit(event)


@dataclass
class LadderView:
    """What the banner and the console show: the dates of the current ladder."""

    ladder: HibernationLadder
    hibernated_since: datetime
    next_notice_at: datetime | None
    deletion_scheduled_at: datetime | None
    deletion_requested_at: datetime | None
    held: bool  # above zero, waiting for a manual resume


def current(*, organization: Organization) -> LadderView | None:
    """The organisation's ladder while its balance is hibernated for lack of credit."""
    balance = Balance.objects.filter(organization=organization, currency=organization.currency,
                                     hibernated_at__isnull=False).first()
    if balance is None or balance.hibernated_at is None:
        return None
    ladder = HibernationLadder.objects.filter(balance=balance, hibernated_at=balance.hibernated_at).first()
    if ladder is None:
        return None
    requested = ladder.status == LadderStatus.DELETION_REQUESTED
    return LadderView(
        ladder=ladder, hibernated_since=ladder.hibernated_at,
        next_notice_at=None if requested else next_notice_at(ladder),
        deletion_scheduled_at=ladder.deletion_due_at,
        deletion_requested_at=ladder.ended_at if requested else None,
        held=balance.amount > 0,
    )
