"""Hibernate a prepaid organisation whose credit ran out; resume it after a top-up.

- Who: prepaid organisations whose balance *projected to now* is at or below
  `-CREDITS_HIBERNATE_GRACE_AMOUNT` (and, with a `CREDITS_HIBERNATE_GRACE_PERIOD`, has been
  at or below zero that long). Metering runs a couple of minutes behind the clock, so the
  posted balance lags: the projection is the posted balance less the burn rate over the
  minutes since the organisation's metering watermark (`projected_amount`). Checked every
  minute, so no prepaid balance falls below zero by more than about one minute's burn.
  Postpaid ones never (they have a credit limit, enforced by invoicing).
- How: under the balance lock, every running resource goes to `hibernated` through
  `usage.services.resource_change_state` (so its hibernated rate applies from that
  minute), the ids are kept on the balance, a `ProvisioningRequest` is written to the
  outbox, a `CreditEvent` and an audit row record it; delivery happens after commit and
  is retried with backoff until the platform acknowledges.
- Once: `Balance.hibernated_at` is set in the same transaction; a second pass sees it.
- Resume: when a credit lifts the balance above zero (automatic, `CREDITS_RESUME_MODE`)
  or when a person asks (manual), the resources credits hibernated go back to running.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import BillingMode, Organization, User
from core.errors import Conflict
from core.money import format_money, round_money
from credits import notify
from credits.models import (
    Balance,
    CreditEvent,
    EventKind,
    ProvisioningAction,
    ProvisioningRequest,
    RequestStatus,
)
from credits.provisioning import DeliveryError, backend

if TYPE_CHECKING:
    from usage.models import Resource

logger = logging.getLogger(__name__)
SOURCE = "service"  # usage.models.StateSource.SERVICE: "Service (credits, staff)"
# Requests delivered per `deliver_due` pass; each holds its row lock only while sending.
DELIVERY_BATCH = 100


# The balance projected to a moment: posted, less the burn rate over the minutes its
# chunk's metering watermark is behind that moment (never projected forward past it).
PROJECTED_SQL = """
SELECT b.id, b.amount - b.burn_rate_per_hour
       * GREATEST(0, %(now_minute)s - COALESCE(c.watermark_minute, %(now_minute)s)) / 60 AS projected
FROM credits_balance b
JOIN accounts_organization o ON o.id = b.organization_id
LEFT JOIN usage_meteringchunk c ON c.number = b.organization_id %% %(chunks)s
WHERE {where}
"""


def _projected(where: str, params: dict, now: datetime) -> list[tuple[int, Decimal]]:
    from usage.models.resources import to_minute

    with connection.cursor() as cursor:
        cursor.execute(PROJECTED_SQL.format(where=where),
                       {**params, "now_minute": to_minute(now), "chunks": settings.USAGE_METERING_CHUNKS})
        return [(pk, Decimal(projected)) for pk, projected in cursor.fetchall()]


def projected_amount(balance: Balance, *, now: datetime) -> Decimal:
    """`balance.amount` projected to `now` (see the module docstring)."""
    rows = _projected("b.id = %(id)s", {"id": balance.pk}, now)
    return rows[0][1] if rows else balance.amount


def hibernation_candidates(*, now: datetime | None = None) -> list[int]:
    """Balance ids due for hibernation (read without locks; re-checked under the lock)."""
    now = now or timezone.now()
    period = settings.CREDITS_HIBERNATE_GRACE_PERIOD
    rows = _projected(
        "o.billing_mode = %(prepaid)s AND o.is_active AND b.hibernated_at IS NULL"
        + (" AND b.depleted_at <= %(depleted_by)s" if period else "") + " ORDER BY b.id",
        {"prepaid": BillingMode.PREPAID, "depleted_by": now - period}, now)
    grace = -settings.CREDITS_HIBERNATE_GRACE_AMOUNT
    return [pk for pk, projected in rows if projected <= grace]


def _due(balance: Balance, now: datetime) -> bool:
    period = settings.CREDITS_HIBERNATE_GRACE_PERIOD
    if period and (balance.depleted_at is None or balance.depleted_at > now - period):
        return False
    return projected_amount(balance, now=now) <= -settings.CREDITS_HIBERNATE_GRACE_AMOUNT


def hibernate_due(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    done = 0
    for balance_id in hibernation_candidates(now=now):
        done += bool(hibernate(balance_id=balance_id, now=now))
    return done


def _running_resources(organization_id: int) -> QuerySet[Resource]:
    from usage.models import Resource

    return Resource.objects.filter(organization_id=organization_id, state="running").order_by("id")


@transaction.atomic
def hibernate(*, balance_id: int, now: datetime | None = None) -> ProvisioningRequest | None:
    now = now or timezone.now()
    from usage.services import resource_change_state

    balance = Balance.objects.select_for_update(of=("self",)).select_related("organization").get(pk=balance_id)
    org = balance.organization
    if balance.hibernated_at is not None or org.billing_mode != BillingMode.PREPAID or not _due(balance, now):
        return None
    reason = f"Credit exhausted: balance {format_money(balance.amount, balance.currency)}"
    ids = []
    for resource in _running_resources(org.pk):
        resource_change_state(resource=resource, state="hibernated", at=now, source=SOURCE, reason=reason)
        ids.append(resource.pk)
    balance.hibernated_at = now
    balance.hibernated_resources = ids
    balance.save(update_fields=["hibernated_at", "hibernated_resources"])
    from credits import ladder

    ladder.start(balance=balance, started_at=now)
    request = provisioning_outbox(org, ProvisioningAction.HIBERNATE, ids, reason, now)
    event = CreditEvent.objects.create(
        organization=org, kind=EventKind.HIBERNATED, created_at=now,
        message=f"{len(ids)} running resource(s) hibernated: credit exhausted "
                f"({format_money(balance.amount, balance.currency)}). Top up to resume.",
        data={"resource_ids": ids, "balance": str(balance.amount), "provisioning_request_id": request.pk},
    )
    audit_record("credits.hibernated", organization=org, obj=balance, reason=reason,
                 changes={"resource_ids": ids, "balance": balance.amount})
    from webhooks.services import Event, emit_many

    emit_many([
        Event(type="credit.exhausted", organization_id=org.pk, occurred_at=now, data={
            "currency": balance.currency, "balance": str(round_money(balance.amount, balance.currency))}),
        Event(type="resource.hibernated", organization_id=org.pk, occurred_at=now,
              data={"resource_ids": ids, "reason": reason}),
    ])
    notify.email_event_after_commit(event)
    return request


@transaction.atomic
def resume(*, organization_id: int, actor: User | None = None, now: datetime | None = None) -> ProvisioningRequest | None:
    """Wake the resources credits hibernated. Refused while the balance is not above zero."""
    now = now or timezone.now()
    from usage.models import Resource
    from usage.services import resource_change_state

    balance = (Balance.objects.select_for_update(of=("self",)).select_related("organization")
               .filter(organization_id=organization_id, hibernated_at__isnull=False).first())
    if balance is None:
        return None
    if balance.amount <= 0:
        raise Conflict("Top up first: resources resume once the balance is above zero.")
    org = balance.organization
    reason = f"Credit restored: balance {format_money(balance.amount, balance.currency)}"
    ids = []
    for resource in Resource.objects.filter(pk__in=balance.hibernated_resources, state="hibernated").order_by("id"):
        resource_change_state(resource=resource, state="running", at=now, source=SOURCE, reason=reason)
        ids.append(resource.pk)
    balance.hibernated_at = None
    balance.hibernated_resources = []
    balance.save(update_fields=["hibernated_at", "hibernated_resources"])
    from credits import ladder

    ladder.cancel(balance=balance, now=now)
    request = provisioning_outbox(org, ProvisioningAction.RESUME, ids, reason, now)
    CreditEvent.objects.create(
        organization=org, kind=EventKind.RESUMED, created_at=now,
        message=f"{len(ids)} resource(s) resumed: credit restored ({format_money(balance.amount, balance.currency)}).",
        data={"resource_ids": ids, "balance": str(balance.amount), "provisioning_request_id": request.pk},
    )
    from webhooks.services import emit

    emit(type="resource.resumed", organization=org, occurred_at=now, data={"resource_ids": ids, "reason": reason})
    audit_record("credits.resumed", actor=actor, organization=org, obj=balance, reason=reason,
                 changes={"resource_ids": ids, "mode": "manual" if actor else settings.CREDITS_RESUME_MODE})
    return request


def provisioning_outbox(org: Organization, action: str, resource_ids: list[int], reason: str,
                        now: datetime) -> ProvisioningRequest:
    """A hibernate or resume request in the signed outbox, sent after commit (budgets'
    hard caps use it too, with their own reason)."""
    request = ProvisioningRequest.objects.create(
        organization=org, action=action, created_at=now, next_attempt_at=now,
        payload={"resource_ids": resource_ids, "reason": reason, "at": now.isoformat()},
    )
    from core import outbox

    outbox.enqueue("credits.provisioning_deliver", request.pk)
    return request


def delivery_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … capped at 30 minutes: the platform is retried until it answers."""
    return min(timedelta(seconds=30 * 2 ** max(attempts - 1, 0)), timedelta(minutes=30))


@transaction.atomic
def deliver(*, request_id: int, now: datetime | None = None) -> bool:
    """Send one request if it is due. The row lock (skip_locked) keeps two workers from
    sending it at once; the platform dedupes on the request id if a send is repeated
    after a crash between acknowledgement and commit."""
    now = now or timezone.now()
    request = (ProvisioningRequest.objects.select_for_update(skip_locked=True)
               .filter(pk=request_id, status=RequestStatus.PENDING, next_attempt_at__lte=now).first())
    if request is None:
        return False
    request.attempts += 1
    try:
        backend().send(request)
    except DeliveryError as exc:
        request.last_error = str(exc)[:2000]
        request.next_attempt_at = now + delivery_delay(request.attempts)
        request.save(update_fields=["attempts", "last_error", "next_attempt_at"])
        logger.warning("provisioning request %s failed (attempt %s): %s", request.pk, request.attempts, exc)
        return False
    request.status = RequestStatus.ACKNOWLEDGED
    request.acknowledged_at = now
    request.last_error = ""
    request.save(update_fields=["attempts", "status", "acknowledged_at", "last_error"])
    return True


def deliver_due(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    ids = list(ProvisioningRequest.objects.filter(status=RequestStatus.PENDING, next_attempt_at__lte=now)
               .order_by("next_attempt_at", "id").values_list("id", flat=True)[:DELIVERY_BATCH])
    return sum(deliver(request_id=i, now=now) for i in ids)
