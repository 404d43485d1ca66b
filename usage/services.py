"""Writes to resources and their history. Every change point goes through
`record_change_points`, whether it comes from a platform event, another app (credits'
hibernate/resume) or staff, so an interval is recorded the same way from anywhere."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiKey, Organization, User
from core.errors import Conflict, DomainError
from pricing.models import Product
from usage.models import (
    AddonAttachment,
    Recheck,
    Resource,
    ResourceKind,
    ResourceState,
    StateSource,
    to_minute,
)


@dataclass(frozen=True)
class ChangePoint:
    """A reported change: from `at` on, `state` and/or `product_id` (None: unchanged)."""

    resource_id: int
    organization_id: int
    at: datetime
    current_product_id: int
    state: str | None = None
    product_id: int | None = None
    event_id: int | None = None
    source: str = StateSource.EVENT
    reason: str = ""


def check_event_time(at: datetime, *, now: datetime | None = None, field: str = "at") -> int:
    """The minute of `at`, refusing naive, future (beyond the tolerance) and too old times."""
    if at.tzinfo is None:
        raise DomainError("Give a time zone (e.g. 2026-03-01T10:17:00Z).", field=field)
    now = now or timezone.now()
    if at > now + settings.USAGE_FUTURE_TOLERANCE:
        raise DomainError("More than 5 minutes in the future.", code="future", field=field)
    if at < now - settings.USAGE_MAX_EVENT_AGE:
        raise DomainError(
            f"Older than {settings.USAGE_MAX_EVENT_AGE.days} days: ask billing staff for an adjustment.",
            code="too_old", field=field,
        )
    return to_minute(at)


def record_change_points(points: Sequence[ChangePoint]) -> None:
    """Insert change points, recompute the derived interval columns of every resource
    they touch (one statement), refresh the resources' cached state and queue a recheck
    per point so metering corrects minutes it already rated. The caller holds the row
    locks of the resources (`lock_resources`)."""
    if not points:
        return
    rows = json.dumps([
        [p.resource_id, p.organization_id, p.at.isoformat(), to_minute(p.at), p.state, p.product_id,
         # Placeholders until intervals_recompute fills them (same transaction).
         p.state or ResourceState.PROVISIONING, p.product_id or p.current_product_id,
         p.event_id, p.source, p.reason[:200]]
        for p in points
    ])
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_POINTS_SQL, {"rows": rows, "now": timezone.now()})
    intervals_recompute(resource_ids={p.resource_id for p in points})


# The points and their rechecks in one statement, the rows as one JSON parameter (the ORM's
# bulk_create prepared every value of every row in Python: most of a batch's lifecycle cost).
_INSERT_POINTS_SQL = """
WITH src AS MATERIALIZED (
    SELECT r FROM json_array_elements(%(rows)s::json) AS r
), points AS (
    INSERT INTO usage_stateinterval (resource_id, organization_id, started_at, start_minute, state, product_id,
                                     eff_state, eff_product_id, event_id, source, reason, recorded_at)
    SELECT (r->>0)::bigint, (r->>1)::bigint, (r->>2)::timestamptz, (r->>3)::bigint, r->>4, (r->>5)::bigint,
           r->>6, (r->>7)::bigint, (r->>8)::bigint, r->>9, r->>10, %(now)s
    FROM src
)
INSERT INTO usage_recheck (resource_id, organization_id, from_minute, created_at)
SELECT (r->>0)::bigint, (r->>1)::bigint, (r->>3)::bigint, %(now)s FROM src
"""


def lock_resources(resource_ids: Iterable[int]) -> None:
    """Row locks in id order (no deadlock between two batches touching the same resources)."""
    ids = sorted(set(resource_ids))
    if ids:
        list(Resource.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))


# Derived columns from the ordered change points: a running COUNT of non-null reports
# numbers the groups that share a last reported value (PostgreSQL has no IGNORE NULLS),
# FIRST_VALUE in each group carries that value forward, LEAD gives each interval's end.
_RECOMPUTE_SQL = """
WITH ordered AS (
    SELECT id, resource_id, started_at, state, product_id,
           COUNT(state) OVER w AS state_group,
           COUNT(product_id) OVER w AS product_group,
           LEAD(start_minute) OVER w AS next_minute
    FROM usage_stateinterval
    WHERE resource_id = ANY(%(ids)s)
    WINDOW w AS (PARTITION BY resource_id ORDER BY started_at, id)
), filled AS (
    SELECT id, next_minute,
           FIRST_VALUE(state) OVER (PARTITION BY resource_id, state_group ORDER BY started_at, id) AS eff_state,
           FIRST_VALUE(product_id) OVER (PARTITION BY resource_id, product_group ORDER BY started_at, id) AS eff_product
    FROM ordered
)
UPDATE usage_stateinterval
SET end_minute = filled.next_minute,
    eff_state = COALESCE(filled.eff_state, 'provisioning'),
    eff_product_id = COALESCE(filled.eff_product, usage_stateinterval.eff_product_id)
FROM filled
WHERE usage_stateinterval.id = filled.id
  AND (usage_stateinterval.end_minute IS DISTINCT FROM filled.next_minute
       OR usage_stateinterval.eff_state IS DISTINCT FROM COALESCE(filled.eff_state, 'provisioning')
       OR usage_stateinterval.eff_product_id IS DISTINCT FROM COALESCE(filled.eff_product, usage_stateinterval.eff_product_id))
"""

_REFRESH_RESOURCES_SQL = """
UPDATE usage_resource
SET state = cur.eff_state, product_id = cur.eff_product_id, state_since = cur.started_at,
    deleted_at = CASE WHEN cur.eff_state = 'deleted' THEN cur.started_at ELSE NULL END
FROM (
    SELECT resource_id, eff_state, eff_product_id, started_at
    FROM usage_stateinterval
    WHERE resource_id = ANY(%(ids)s) AND end_minute IS NULL
) AS cur
WHERE usage_resource.id = cur.resource_id
"""


def intervals_recompute(*, resource_ids: Iterable[int]) -> None:
    ids = sorted({int(i) for i in resource_ids})
    if not ids:
        return
    with connection.cursor() as cursor:
        # Only rows whose derived values change are written (most of a history does not).
        cursor.execute(_RECOMPUTE_SQL, {"ids": ids})
        cursor.execute(_REFRESH_RESOURCES_SQL, {"ids": ids})


@transaction.atomic
def resource_create(
    *,
    organization: Organization,
    external_id: str,
    product: Product,
    at: datetime,
    kind: str = ResourceKind.SERVER,
    name: str = "",
    state: str = ResourceState.PROVISIONING,
    source: str = StateSource.SERVICE,
    actor: User | None = None,
    api_key: ApiKey | None = None,
) -> Resource:
    if Resource.objects.filter(external_id=external_id).exists():
        raise Conflict(f"A resource with id {external_id!r} already exists.", field="external_id")
    check_event_time(at)
    resource = Resource.objects.create(
        organization=organization, external_id=external_id, kind=kind, name=name or external_id,
        product=product, state=state, state_since=at,
    )
    record_change_points([
        ChangePoint(resource_id=resource.pk, organization_id=organization.pk, at=at, state=state,
                    current_product_id=product.pk,
                    product_id=product.pk, source=source)
    ])
    audit_record("resource.created", actor=actor, api_key=api_key, organization=organization, obj=resource,
                 changes={"external_id": external_id, "product": product.pk, "state": state, "at": at})
    resource.refresh_from_db()
    return resource


@transaction.atomic
def resource_change_state(
    *,
    resource: Resource,
    state: str,
    at: datetime,
    source: str,
    reason: str = "",
    actor: User | None = None,
    api_key: ApiKey | None = None,
) -> Resource:
    """Record that `resource` is in `state` from `at` on, exactly as a lifecycle event
    would (credits' hibernate/resume and staff use this). A time already metered is
    corrected by the next metering pass."""
    if state not in ResourceState.values:
        raise DomainError(f"Unknown state {state!r}.", field="state")
    if source not in StateSource.values:
        raise DomainError(f"Unknown source {source!r}.", field="source")
    lock_resources([resource.pk])
    resource.refresh_from_db()
    if resource.deleted_at is not None and at >= resource.deleted_at:
        raise Conflict(f"{resource} was deleted at {resource.deleted_at:%Y-%m-%d %H:%M} UTC.")
    check_event_time(at)
    before = resource.state
    record_change_points([
        ChangePoint(resource_id=resource.pk, organization_id=resource.organization_id, at=at, state=state,
                    current_product_id=resource.product_id, source=source, reason=reason)
    ])
    audit_record("resource.state_changed", actor=actor, api_key=api_key, organization=resource.organization,
                 obj=resource, reason=reason, changes={"state": [before, state], "at": at, "source": source})
    resource.refresh_from_db()
    return resource


@transaction.atomic
def resource_resize(
    *, resource: Resource, product: Product, at: datetime, source: str = StateSource.SERVICE, reason: str = "",
    actor: User | None = None, api_key: ApiKey | None = None,
) -> Resource:
    lock_resources([resource.pk])
    resource.refresh_from_db()
    if resource.deleted_at is not None and at >= resource.deleted_at:
        raise Conflict(f"{resource} was deleted at {resource.deleted_at:%Y-%m-%d %H:%M} UTC.")
    check_event_time(at)
    before = resource.product_id
    record_change_points([
        ChangePoint(resource_id=resource.pk, organization_id=resource.organization_id, at=at,
                    product_id=product.pk, current_product_id=resource.product_id, source=source, reason=reason)
    ])
    audit_record("resource.resized", actor=actor, api_key=api_key, organization=resource.organization,
                 obj=resource, reason=reason, changes={"product": [before, product.pk], "at": at})
    resource.refresh_from_db()
    return resource


def addon_attach_points(*, resource_id: int, organization_id: int, product_id: int, at: datetime) -> AddonAttachment:
    """Attach an add-on from `at` (caller holds the resource lock). Attaching one already
    attached at that time is a no-op."""
    minute = to_minute(at)
    existing = AddonAttachment.objects.filter(
        resource_id=resource_id, product_id=product_id, start_minute__lte=minute
    ).order_by("-start_minute").first()
    if existing is not None and (existing.end_minute is None or existing.end_minute > minute):
        return existing
    following = AddonAttachment.objects.filter(
        resource_id=resource_id, product_id=product_id, start_minute__gt=minute
    ).order_by("start_minute").first()
    attachment = AddonAttachment.objects.create(
        resource_id=resource_id, organization_id=organization_id, product_id=product_id, start_minute=minute,
        attached_at=at,
        # A detach we already have for a later attachment bounds this one at that attachment.
        end_minute=following.start_minute if following else None,
        detached_at=following.attached_at if following else None,
    )
    Recheck.objects.create(resource_id=resource_id, organization_id=organization_id, from_minute=minute)
    return attachment


def addon_detach_points(*, resource_id: int, organization_id: int, product_id: int, at: datetime) -> bool:
    """Detach the add-on attached at `at`. False when none was attached then."""
    minute = to_minute(at)
    attachment = AddonAttachment.objects.filter(
        resource_id=resource_id, product_id=product_id, start_minute__lte=minute
    ).order_by("-start_minute").first()
    if attachment is None or (attachment.end_minute is not None and attachment.end_minute <= minute):
        return False
    old_end = attachment.end_minute
    attachment.end_minute, attachment.detached_at = minute, at
    attachment.save(update_fields=["end_minute", "detached_at"])
    Recheck.objects.create(
        resource_id=resource_id, organization_id=organization_id,
        from_minute=minute if old_end is None else min(minute, old_end),
    )
    return True
