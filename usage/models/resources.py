"""Resources and their history: state intervals, add-on attachments, epoch minutes.

Time is stored twice where metering needs it: an aware datetime for people and an
integer epoch minute (`to_minute`: `int(ts.timestamp()) // 60`) for SQL. A state
reported at 10:17:45 applies from minute 10:17; intervals are half-open
`[start_minute, end_minute)`.

`StateInterval` rows are the change points reported for a resource (by an event, a
service or an import). `end_minute`, `eff_state` and `eff_product` are derived from the
ordered change points by `services.intervals_recompute` and never written elsewhere.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import models

from pricing.models import ResourceState


def to_minute(ts: datetime) -> int:
    """Epoch minute of an aware datetime (floor)."""
    return int(ts.timestamp()) // 60


def from_minute(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, tz=UTC)


class ResourceKind(models.TextChoices):
    SERVER = "server", "Server"
    VOLUME = "volume", "Volume"
    IP = "ip", "IP address"


class Resource(models.Model):
    """A server, volume or IP of one organisation, known by the platform's id.

    `state` and `product` mirror the latest change point (a cache for lists and the
    portal); metering reads the intervals, never these two columns."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="resources")
    external_id = models.CharField(max_length=200, unique=True, help_text="The provisioning platform's id.")
    kind = models.CharField(max_length=10, choices=ResourceKind.choices, default=ResourceKind.SERVER)
    name = models.CharField(max_length=200, blank=True)
    product = models.ForeignKey("pricing.Product", on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=12, choices=ResourceState.choices, default=ResourceState.PROVISIONING)
    state_since = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Issue 19: the project (null: none) and free-form labels (usage.labels checks them).
    # `tags_at` is the time of the event or portal change that set them last: an older
    # event arriving later changes nothing.
    project = models.ForeignKey("usage.Project", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="resources")
    # The database default too, so writers in bare SQL (the benchmarks' fleets) need not name it.
    labels = models.JSONField(default=dict, blank=True, db_default={})
    tags_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["organization_id", "name", "id"]
        indexes = [models.Index(fields=["organization", "state"]), models.Index(fields=["organization", "project"])]

    def __str__(self) -> str:
        return self.name or self.external_id


class StateSource(models.TextChoices):
    EVENT = "event", "Platform event"
    SERVICE = "service", "Service (credits, staff)"
    IMPORT = "import", "Import"


class StateInterval(models.Model):
    """One change point of a resource: from `started_at` on, the resource was in `state`
    with `product` (either may be null: "unchanged" — a resize reports only the product).

    Derived (by `intervals_recompute`, for every change point of the resource at once):
    `end_minute` is the next change point's minute (null while current) and
    `eff_state` / `eff_product` carry forward the last reported value."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="intervals")
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField()
    start_minute = models.BigIntegerField()
    end_minute = models.BigIntegerField(null=True, blank=True)
    state = models.CharField(max_length=12, choices=ResourceState.choices, null=True, blank=True)
    product = models.ForeignKey("pricing.Product", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    eff_state = models.CharField(max_length=12, choices=ResourceState.choices, default=ResourceState.PROVISIONING)
    eff_product = models.ForeignKey("pricing.Product", on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=10, choices=StateSource.choices, default=StateSource.EVENT)
    reason = models.CharField(max_length=200, blank=True)
    # The event that reported this point. No database constraint: events are partitioned by
    # time and dropped past USAGE_EVENT_RETENTION_DAYS (a partitioned table has no unique
    # `id` to reference), while the history is kept; an old point may name a dropped event.
    event = models.ForeignKey(
        "UsageEvent", null=True, blank=True, on_delete=models.SET_NULL, db_constraint=False, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["resource_id", "started_at", "id"]
        indexes = [
            models.Index(fields=["resource", "start_minute"]),
            # Metering: the intervals of a chunk's organisations still open or ending after the watermark.
            models.Index(fields=["organization", "end_minute"]),
        ]

    def __str__(self) -> str:
        return f"{self.resource_id} {self.eff_state} from {self.started_at:%Y-%m-%d %H:%M}"


class AddonAttachment(models.Model):
    """An add-on (SSD upgrade, dedicated IP, backup) attached to a resource for
    `[start_minute, end_minute)`. It is rated at its own product's price for the parent's
    state at each minute: a hibernated server's backup pays the hibernated backup rate."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="addons")
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    product = models.ForeignKey("pricing.Product", on_delete=models.PROTECT, related_name="+")
    start_minute = models.BigIntegerField()
    end_minute = models.BigIntegerField(null=True, blank=True)
    attached_at = models.DateTimeField()
    detached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["resource_id", "start_minute"]
        indexes = [models.Index(fields=["organization", "end_minute"])]

    def __str__(self) -> str:
        return f"{self.product_id} on {self.resource_id}"
