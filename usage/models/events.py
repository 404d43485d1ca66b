"""Events as the platform sent them, and the metered quantities (metrics) it reports.

An event's `event_id` is unique for ever, so a duplicate is recognised however late it
comes back. `EVENT_STATE` is the state each lifecycle event reports.
"""

from __future__ import annotations

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


class UsageEvent(models.Model):
    """An event as the platform sent it. `event_id` is the sender's id and unique for
    ever: the same id again is a duplicate however late it comes back."""

    event_id = models.CharField(max_length=200, unique=True)
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
        # Only what a reader uses: metered sums by organisation and metric over time (and the
        # unique event id). Nothing reads events by resource.
        indexes = [
            models.Index(
                fields=["organization", "metric", "occurred_at"],
                condition=Q(type="metered"),
                name="usage_event_metered_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"


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
