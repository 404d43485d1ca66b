"""Events as the platform sent them, and the metered quantities (metrics) it reports.

Events are stored partitioned by day of `occurred_at` and kept
`USAGE_EVENT_RETENTION_DAYS` (see `usage.event_partitions`). Duplicates are recognised
within a stated window, not for ever: see `DEDUP_WINDOW_DAYS` and `dedup_bucket`.
`EVENT_STATE` is the state each lifecycle event reports.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import models
from django.db.models import Q

from pricing.models import ResourceState
from usage.models.resources import Resource


class EventType(models.TextChoices):
    CREATED = "created", "Created"
    STARTED = "started", "Started"
    STOPPED = "stopped", "Stopped"
    RESIZED = "resized", "Resized"
    HIBERNATED = "hibernated", "Hibernated"
    RESUMED = "resumed", "Resumed"
    DELETED = "deleted", "Deleted"
    ERROR = "error", "Error"
    ADDON_ATTACHED = "addon_attached", "Add-on attached"
    ADDON_DETACHED = "addon_detached", "Add-on detached"
    METERED = "metered", "Metered quantity"
    UPDATED = "updated", "Project or labels changed"


# The state each lifecycle event reports (None: the event leaves the state as it was).
EVENT_STATE: dict[str, str | None] = {
    EventType.CREATED: ResourceState.PROVISIONING,
    EventType.STARTED: ResourceState.RUNNING,
    EventType.STOPPED: ResourceState.STOPPED,
    EventType.RESIZED: None,
    EventType.HIBERNATED: ResourceState.HIBERNATED,
    EventType.RESUMED: ResourceState.RUNNING,
    EventType.DELETED: ResourceState.DELETED,
    EventType.ERROR: ResourceState.ERROR,
}


# The dedup window. Event ids are remembered per bucket of DEDUP_WINDOW_DAYS of receipt
# time (bucket 0 starts 1970-01-01 UTC) in `usage_eventkey`, as the 16-byte md5 of the
# id: each accepted event writes its id into its bucket k and into k + 1, and an event
# received in bucket k is a duplicate if its id is already in bucket k (or in k + 1: a
# worker whose clock is a little ahead accepted it across the boundary). Both rows go in
# one `INSERT … ON CONFLICT DO NOTHING`, so two concurrent batches with the same id, in one
# bucket or on either side of a boundary, meet on a shared row and exactly one wins.
# Hence: the same id again less than DEDUP_WINDOW_DAYS (110) days after it was accepted is
# always a duplicate (across a bucket boundary too: the first wrote k + 1); 220 days or
# more after, it is a new event; in between it depends on where the buckets fall. The
# window is longer than any stored event lives (retention 100 days after the event's time,
# which is at most 7 days before receipt; check usage.E003), so a stored event's id is
# always `duplicate`, as the README promises. Fixed in code: changing it renumbers the
# buckets.
DEDUP_WINDOW_DAYS = 110
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def dedup_bucket(at: datetime) -> int:
    """The dedup bucket of a receipt time."""
    return (at.astimezone(UTC) - _EPOCH).days // DEDUP_WINDOW_DAYS


class UsageEvent(models.Model):
    """An event as the platform sent it. `event_id` is the sender's id; the same id again
    within the dedup window (above) is a duplicate and changes nothing.

    On PostgreSQL the table is partitioned by day of `occurred_at` (primary key `(id,
    occurred_at)`, see `usage.event_partitions`); `event_id` has no unique index there (a
    unique index on a partitioned table must include the partition key): uniqueness within
    the window is `usage_eventkey`'s."""

    event_id = models.CharField(max_length=200)
    # A CloudEvent's source (with `event_id`, its dedup key: usage.cloudevents); "" for an
    # event sent in the native format.
    source = models.CharField(max_length=500, blank=True, db_default="")
    type = models.CharField(max_length=16, choices=EventType.choices)
    # Events arrive 15,000+ a second. No single-column indexes, and no foreign keys in the
    # database: each would be a deferred check per row at every commit. Ingestion reads the
    # resource (and its organisation) in the same transaction, resources and organisations
    # are never deleted (soft `deleted_at` / `is_active`), and PROTECT still holds in the ORM.
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, db_index=False, db_constraint=False, related_name="+"
    )
    resource = models.ForeignKey(
        Resource, on_delete=models.PROTECT, db_index=False, db_constraint=False, related_name="events"
    )
    occurred_at = models.DateTimeField()
    minute = models.BigIntegerField()
    received_at = models.DateTimeField()
    metric = models.CharField(max_length=60, blank=True)
    quantity = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    product = models.ForeignKey(
        "pricing.Product", null=True, blank=True, on_delete=models.PROTECT, db_index=False, db_constraint=False,
        related_name="+",
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        # Only what a reader uses: metered sums by organisation and metric over time. Nothing
        # reads events by resource or by event id (duplicates are found in usage_eventkey).
        indexes = [
            models.Index(
                fields=["organization", "metric", "occurred_at"],
                condition=Q(type="metered"),
                name="usage_event_metered_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"


class EventKey(models.Model):
    """An event id remembered in one dedup bucket (see DEDUP_WINDOW_DAYS): the md5 of the
    id, 16 bytes whatever the id's length. Written and read only by SQL (`usage.ingest`);
    on PostgreSQL partitioned by `bucket` and dropped a bucket at a time."""

    pk = models.CompositePrimaryKey("digest", "bucket")
    digest = models.UUIDField()
    bucket = models.IntegerField()

    class Meta:
        db_table = "usage_eventkey"

    def __str__(self) -> str:
        return f"{self.digest} in bucket {self.bucket}"


class Aggregation(models.TextChoices):
    SUM = "sum", "Sum over the period"
    MAX = "max", "Maximum in the period"
    LAST = "last", "Last value in the period"


class Metric(models.Model):
    """A metered quantity the platform reports (`bandwidth_gb`, `storage_gb`), how it
    aggregates per period, and the product whose price book entry prices the total
    (its tiers hold the included allowance and the overage rate)."""

    code = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    unit = models.CharField(max_length=20, default="unit")
    aggregation = models.CharField(max_length=4, choices=Aggregation.choices, default=Aggregation.SUM)
    product = models.ForeignKey("pricing.Product", on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code
