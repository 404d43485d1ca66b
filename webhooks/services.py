"""Writes: endpoints (create, update, rotate, delete), emitting events, replays and the
test event. Each is one transaction with its audit row; deliveries go out after commit
through the transactional outbox (core.outbox), so a rolled-back change sends nothing
and a broker outage delays but never drops a delivery."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiKey, Organization, User
from core.errors import Conflict, DomainError
from webhooks import addresses, signing
from webhooks.catalogue import ALL_TYPES, SUBSCRIBABLE, TEST_EVENT
from webhooks.models import (
    DeliveryStatus,
    EndpointStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)

ROTATION_OVERLAP_MAX = timedelta(days=7)


def _event_types(types: Iterable[str]) -> list[str]:
    wanted = sorted(set(types))
    if not wanted:
        raise DomainError("Choose at least one event type.", field="event_types")
    unknown = [t for t in wanted if t not in SUBSCRIBABLE]
    if unknown:
        raise DomainError(f"Unknown event type(s): {', '.join(unknown)}.", field="event_types")
    return wanted


@transaction.atomic
def endpoint_create(
    *, organization: Organization | None, url: str, event_types: Iterable[str], description: str = "",
    actor: User | None = None, api_key: ApiKey | None = None,
) -> WebhookEndpoint:
    """An endpoint of `organization`, or a platform-wide one (None). Its secret is in
    the returned object: shown once to whoever made it."""
    addresses.check_url(url)
    endpoint = WebhookEndpoint.objects.create(
        organization=organization, url=url, description=description, event_types=_event_types(event_types),
        secret=signing.new_secret(), created_by=actor)
    audit_record("webhook_endpoint.created", actor=actor, api_key=api_key, organization=organization, obj=endpoint,
                 changes={"url": url, "event_types": endpoint.event_types})
    return endpoint


@transaction.atomic
def endpoint_update(
    *, endpoint: WebhookEndpoint, url: str | None = None, event_types: Iterable[str] | None = None,
    description: str | None = None, enabled: bool | None = None, actor: User | None = None,
    api_key: ApiKey | None = None,
) -> WebhookEndpoint:
    ep = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    changes: dict = {}
    if url is not None and url != ep.url:
        addresses.check_url(url)
        changes["url"] = [ep.url, url]
        ep.url = url
    if event_types is not None:
        types = _event_types(event_types)
        if types != ep.event_types:
            changes["event_types"] = [ep.event_types, types]
            ep.event_types = types
    if description is not None and description != ep.description:
        changes["description"] = [ep.description, description]
        ep.description = description
    if enabled is not None:
        status = EndpointStatus.ENABLED if enabled else EndpointStatus.DISABLED
        if status != ep.status:
            changes["status"] = [ep.status, status]
            ep.status = status
            ep.disabled_at = None if enabled else timezone.now()
            ep.disabled_reason = "" if enabled else "Disabled by hand."
    if changes:
        ep.save()
        audit_record("webhook_endpoint.changed", actor=actor, api_key=api_key, organization=ep.organization, obj=ep,
                     changes=changes)
        if changes.get("status", [None, None])[1] == EndpointStatus.ENABLED:
            # What waited while it was off goes now.
            _dispatch(list(ep.deliveries.filter(status=DeliveryStatus.PENDING).values_list("id", flat=True)))
    return ep


@transaction.atomic
def endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, overlap: timedelta | None = None, actor: User | None = None,
    api_key: ApiKey | None = None, now: datetime | None = None,
) -> WebhookEndpoint:
    """A new secret; the old one keeps signing beside it for `overlap` (default
    `WEBHOOKS_ROTATION_OVERLAP`, 24 h; 0 ends it at once), so receivers switch without
    a window in which they reject us."""
    now = now or timezone.now()
    overlap = settings.WEBHOOKS_ROTATION_OVERLAP if overlap is None else overlap
    if overlap < timedelta(0) or overlap > ROTATION_OVERLAP_MAX:
        raise DomainError("The overlap is between 0 and 7 days.", field="overlap_seconds")
    ep = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    ep.previous_secret = ep.secret if overlap else ""
    ep.previous_secret_expires_at = now + overlap if overlap else None
    ep.secret = signing.new_secret()
    ep.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    audit_record("webhook_endpoint.secret_rotated", actor=actor, api_key=api_key, organization=ep.organization,
                 obj=ep, changes={"overlap_seconds": int(overlap.total_seconds())})
    return ep


@transaction.atomic
def endpoint_delete(*, endpoint: WebhookEndpoint, actor: User | None = None, api_key: ApiKey | None = None) -> None:
    audit_record("webhook_endpoint.deleted", actor=actor, api_key=api_key, organization=endpoint.organization,
                 obj=endpoint, changes={"url": endpoint.url})
    endpoint.delete()


# --- emitting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    type: str
    organization_id: int
    data: dict
    dedup_key: str = ""
    occurred_at: datetime | None = field(default=None)


def _message_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def emit(*, type: str, organization: Organization | int, data: dict, dedup_key: str = "",
         occurred_at: datetime | None = None) -> list[WebhookMessage]:
    org_id = organization if isinstance(organization, int) else organization.pk
    return emit_many([Event(type=type, organization_id=org_id, data=data, dedup_key=dedup_key,
                            occurred_at=occurred_at)])


def emit_many(events: list[Event]) -> list[WebhookMessage]:
    """Record `events` in the caller's transaction for every enabled endpoint that wants
    them (the organisation's own and the platform's), and send them after commit.

    Set-based: one query for the endpoints, one INSERT for the messages and one for the
    deliveries, whatever the count (an invoice run emits a chunk's events at once). No
    endpoint wants it: nothing is written. An event with a `dedup_key` already emitted
    is skipped (ON CONFLICT DO NOTHING), so a scan may emit the same thing every run."""
    for e in events:
        kind = ALL_TYPES.get(e.type)
        if kind is None or kind is TEST_EVENT:
            raise ValueError(f"webhooks: {e.type!r} is not in the event catalogue")
        if set(e.data) != set(kind.fields):
            raise ValueError(f"webhooks: {e.type} data has {sorted(e.data)}, the catalogue says {sorted(kind.fields)}")
    if not events:
        return []
    org_ids = {e.organization_id for e in events}
    types = {e.type for e in events}
    endpoints = list(WebhookEndpoint.objects.filter(
        Q(organization_id__in=org_ids) | Q(organization__isnull=True),
        status=EndpointStatus.ENABLED, event_types__overlap=sorted(types),
    ).values("id", "organization_id", "event_types"))
    if not endpoints:
        return []
    now = timezone.now()
    wanted = [(e, [ep["id"] for ep in endpoints if e.type in ep["event_types"]
                   and ep["organization_id"] in (None, e.organization_id)]) for e in events]
    wanted = [(e, eps) for e, eps in wanted if eps]
    messages = WebhookMessage.objects.bulk_create(
        [WebhookMessage(public_id=_message_id(), organization_id=e.organization_id, event_type=e.type,
                        version=ALL_TYPES[e.type].version, data=e.data, dedup_key=e.dedup_key,
                        occurred_at=e.occurred_at or now, created_at=now) for e, _ in wanted],
        ignore_conflicts=any(e.dedup_key for e, _ in wanted))
    if any(m.pk is None for m in messages):  # conflicts skipped: read back which rows are ours
        ours = dict(WebhookMessage.objects.filter(public_id__in=[m.public_id for m in messages])
                    .values_list("public_id", "id"))
        for m in messages:
            m.pk = ours.get(m.public_id)
    deliveries = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(message_id=m.pk, endpoint_id=ep, next_attempt_at=now, window_started_at=now, created_at=now)
         for m, (_, eps) in zip(messages, wanted, strict=True) if m.pk is not None for ep in eps])
    _dispatch([d.pk for d in deliveries])
    return [m for m in messages if m.pk is not None]


def _dispatch(delivery_ids: list[int]) -> None:
    """One outbox message per batch: after commit a worker sends each delivery as its
    own task (`webhooks.dispatch`); `webhooks.deliver_due` sends anything that missed."""
    if delivery_ids:
        from core import outbox

        outbox.enqueue("webhooks.dispatch", delivery_ids)


# --- replay and test ----------------------------------------------------------------------


def _replayable(endpoint: WebhookEndpoint) -> None:
    if endpoint.status != EndpointStatus.ENABLED:
        raise Conflict("The endpoint is disabled: enable it first.", code="endpoint_disabled")


@transaction.atomic
def deliveries_replay(
    *, endpoint: WebhookEndpoint, delivery_ids: Iterable[int] | None = None, since: datetime | None = None,
    until: datetime | None = None, actor: User | None = None, api_key: ApiKey | None = None,
    now: datetime | None = None,
) -> int:
    """Send again, with the same webhook-id, one or more deliveries of `endpoint`: those
    named, or those of messages emitted in [since, until). Each starts a new retry
    window. Returns how many. A delivery already waiting is left as it is."""
    now = now or timezone.now()
    _replayable(endpoint)
    qs = WebhookDelivery.objects.filter(endpoint=endpoint).exclude(status=DeliveryStatus.PENDING)
    if delivery_ids is not None:
        qs = qs.filter(pk__in=list(delivery_ids))
    else:
        if since is None:
            raise DomainError("Name the deliveries, or a range from `since`.", field="since")
        if until is not None and until <= since:
            raise DomainError("`until` must be after `since`.", field="until")
        qs = qs.filter(message__created_at__gte=since)
        if until is not None:
            qs = qs.filter(message__created_at__lt=until)
    ids = list(qs.order_by("message_id").values_list("id", flat=True)[:settings.WEBHOOKS_REPLAY_MAX])
    WebhookDelivery.objects.filter(pk__in=ids).update(
        status=DeliveryStatus.PENDING, trigger="replay", attempts=0, next_attempt_at=now, window_started_at=now,
        claimed_until=None)
    audit_record("webhook_endpoint.replayed", actor=actor, api_key=api_key, organization=endpoint.organization,
                 obj=endpoint, changes={"deliveries": len(ids), "since": since, "until": until,
                                        "delivery_ids": ids[:50]})
    _dispatch(ids)
    return len(ids)


@transaction.atomic
def endpoint_send_test(*, endpoint: WebhookEndpoint, actor: User | None = None,
                       api_key: ApiKey | None = None) -> WebhookDelivery:
    """A `webhook.test` message to this endpoint only."""
    _replayable(endpoint)
    now = timezone.now()
    message = WebhookMessage.objects.create(
        public_id=_message_id(), organization=endpoint.organization, event_type=TEST_EVENT.name,
        version=TEST_EVENT.version, data=dict(TEST_EVENT.example), occurred_at=now, created_at=now)
    delivery = WebhookDelivery.objects.create(message=message, endpoint=endpoint, trigger="test",
                                              next_attempt_at=now, window_started_at=now, created_at=now)
    audit_record("webhook_endpoint.test_sent", actor=actor, api_key=api_key, organization=endpoint.organization,
                 obj=endpoint, changes={"message": message.public_id})
    _dispatch([delivery.pk])
    return delivery
