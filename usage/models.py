"""Resources, their history as state intervals, events, and rated usage.

Time is stored twice where metering needs it: an aware datetime for people and an
integer epoch minute (`int(ts.timestamp()) // 60`) for SQL. A state reported at 10:17:45
applies from minute 10:17; intervals are half-open `[start_minute, end_minute)`.

Invariants:
- `StateInterval` rows are the change points reported for a resource (by an event, a
  service or an import). `end_minute`, `eff_state` and `eff_product` are derived from the
  ordered change points by `services.intervals_recompute` and never written elsewhere.
- `RatedUsage` is append-only. A late event never edits a rated row: the rows it affects
  get a `reversal` row each and the minutes are rated again as `correction` rows.
- Rollups (`UsageHourly`, `UsageDaily`) are sums of rated rows, added once per metering
  run (`MeteringRun.rolled_up_at` marks it in the same transaction).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import models
from django.db.models import Q

from core.money import currency_field, money_field
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

    class Meta:
        ordering = ["organization_id", "name", "id"]
        indexes = [models.Index(fields=["organization", "state"])]

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
    event = models.ForeignKey("UsageEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
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


class Recheck(models.Model):
    """A change point was recorded at `from_minute`: if the chunk's watermark is already
    past it, the next metering pass reverses and re-rates that resource from there.
    Consumed (deleted) by the pass that handles it, in the same transaction."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="+")
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    from_minute = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["organization"])]

    def __str__(self) -> str:
        return f"recheck {self.resource_id} from {self.from_minute}"


class MeteringChunk(models.Model):
    """Organisations are split into `USAGE_METERING_CHUNKS` chunks by
    `organization_id % chunks`. A chunk is metered by whoever holds its row lock
    (`SELECT … FOR UPDATE SKIP LOCKED`); its watermark moves in the same transaction as
    the rows it rated: every minute below it is rated, none at or above it."""

    number = models.PositiveIntegerField(unique=True)
    watermark_minute = models.BigIntegerField(null=True, blank=True, help_text="Null: never metered yet.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"chunk {self.number}"

    @property
    def watermark(self) -> datetime | None:
        return None if self.watermark_minute is None else from_minute(self.watermark_minute)


class RunKind(models.TextChoices):
    METER = "meter", "Metering slice"
    IMPORT = "import", "Import of legacy usage"


class MeteringRun(models.Model):
    """One committed unit of metering: one chunk over one slice `[from, until)`.
    Created in the same transaction as its rated rows, so a run id always names rows
    that exist. `USAGE_AFTER_METERING` hooks get this id."""

    kind = models.CharField(max_length=8, choices=RunKind.choices, default=RunKind.METER)
    chunk = models.PositiveIntegerField(null=True, blank=True)
    from_minute = models.BigIntegerField()
    until_minute = models.BigIntegerField()
    rows = models.PositiveIntegerField(default=0)
    corrections = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    rolled_up_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["id"], condition=Q(rolled_up_at__isnull=True), name="usage_run_pending_rollup")]

    def __str__(self) -> str:
        return f"run {self.pk} chunk {self.chunk}"


class RatedKind(models.TextChoices):
    CHARGE = "charge", "Charge"
    REVERSAL = "reversal", "Reversal (late event)"
    CORRECTION = "correction", "Correction (late event)"
    MINIMUM = "minimum", "Minimum billable time"
    IMPORT = "import", "Imported history"


class RatedUsage(models.Model):
    """Priced minutes of one resource and product in one state at one rate, inside one
    clock hour: `[start_minute, end_minute)`.

    `amount` is unrounded (12 places) and telescoping: round12(rate·end/60) −
    round12(rate·start/60) with epoch minutes, so however a span is split (one pass a
    minute or one catch-up pass) the pieces add up to the same Decimal. A `reversal`
    row negates the row named by `corrects_id`.

    On PostgreSQL the table is partitioned by day of `start_minute` (see
    `usage.partitions`); old days are dropped whole."""

    # No foreign keys in the database and no single-column indexes: rows arrive 100,000 a
    # minute into a partitioned table; the composite indexes below serve every read.
    run = models.ForeignKey(
        MeteringRun, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    resource = models.ForeignKey(
        Resource, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    product = models.ForeignKey(
        "pricing.Product", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    state = models.CharField(max_length=12, choices=ResourceState.choices)
    kind = models.CharField(max_length=10, choices=RatedKind.choices, default=RatedKind.CHARGE)
    start_minute = models.BigIntegerField()
    end_minute = models.BigIntegerField()
    minutes = models.IntegerField(help_text="Negative on reversals.")
    unit = models.CharField(max_length=8, default="hour", help_text="What `unit_rate` buys: hour or month.")
    unit_rate = money_field(help_text="Rate in force per `unit`.")
    amount = money_field(help_text="Unrounded; negative on reversals.")
    currency = currency_field()
    price_id = models.BigIntegerField(null=True, blank=True)
    contract_id = models.BigIntegerField(null=True, blank=True)
    corrects_id = models.BigIntegerField(null=True, blank=True, help_text="The row a reversal negates.")

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["run"]),
            models.Index(fields=["organization", "start_minute"]),
            models.Index(fields=["resource", "end_minute"]),
            models.Index(fields=["corrects_id"], condition=Q(corrects_id__isnull=False), name="usage_rated_corrects"),
        ]

    def __str__(self) -> str:
        return f"{self.resource_id} {self.state} {self.minutes}m {self.amount} {self.currency}"

    @property
    def start(self) -> datetime:
        return from_minute(self.start_minute)

    @property
    def end(self) -> datetime:
        return from_minute(self.end_minute)


class ResourceMonthTotal(models.Model):
    """Month-to-date charge of one resource and product, kept by metering in the same
    transaction as the rows, for products whose hourly price is capped per month."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey("pricing.Product", on_delete=models.PROTECT, related_name="+")
    month = models.DateField()
    amount = money_field()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resource", "product", "month"], name="usage_month_total_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.resource_id} {self.month:%Y-%m} {self.amount}"


class _Rollup(models.Model):
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="+")
    product = models.ForeignKey("pricing.Product", on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=12, choices=ResourceState.choices)
    price_id = models.BigIntegerField(default=0, help_text="0: no price row (imported history).")
    currency = currency_field()
    minutes = models.IntegerField(default=0)
    amount = money_field()

    class Meta:
        abstract = True


class UsageHourly(_Rollup):
    """Sum of rated usage per organisation, resource, product, state and price per
    clock hour. Kept `USAGE_HOURLY_RETENTION_DAYS`."""

    hour = models.DateTimeField()

    class Meta:
        ordering = ["hour", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["resource", "product", "state", "price_id", "hour"], name="usage_hourly_uniq"
            )
        ]
        indexes = [models.Index(fields=["organization", "hour"])]

    def __str__(self) -> str:
        return f"{self.resource_id} {self.hour:%Y-%m-%d %H:00} {self.amount} {self.currency}"


class UsageDaily(_Rollup):
    """Sum of rated usage per organisation, resource, product, state and price per UTC
    day. Kept for ever: this is what invoices and history charts read."""

    day = models.DateField()

    class Meta:
        ordering = ["day", "id"]
        constraints = [
            models.UniqueConstraint(fields=["resource", "product", "state", "price_id", "day"], name="usage_daily_uniq")
        ]
        indexes = [models.Index(fields=["organization", "day"])]

    def __str__(self) -> str:
        return f"{self.resource_id} {self.day} {self.amount} {self.currency}"


class ImportedUsage(models.Model):
    """A legacy usage row already loaded by `import_usage`: its key makes a second run add nothing."""

    key = models.CharField(max_length=200, unique=True)
    rated_usage_id = models.BigIntegerField()
    imported_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key
