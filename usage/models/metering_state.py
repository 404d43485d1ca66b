"""Metering's own state: chunks and their watermarks, runs, and pending rechecks.

Every minute below a chunk's watermark is rated, none at or above it; the watermark
moves in the same transaction as the rows a slice rates (`usage.metering`). A
`MeteringRun` is one such slice; `rolled_up_at` marks that its rows were added to the
rollups. A `Recheck` asks the next pass to re-rate a resource from a minute already
below the watermark, and is consumed by that pass.
"""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Q

from usage.models.resources import Resource, from_minute


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
    (`SELECT … FOR UPDATE SKIP LOCKED`). Two marks move in the same transaction as what
    a slice writes: `watermark_minute` (every minute below it is charged to the balances,
    none at or above it) and `rated_minute` (every minute below it is stored as rated
    spans). `rated_minute ≤ watermark_minute ≤` the end of `rated_minute`'s clock hour: the
    minutes between the two are the open hour, accrued per organisation but not yet
    stored per resource."""

    number = models.PositiveIntegerField(unique=True)
    watermark_minute = models.BigIntegerField(
        null=True, blank=True, help_text="Every minute below it is metered (charged to balances). Null: never metered.")
    rated_minute = models.BigIntegerField(
        null=True, blank=True, help_text="Every minute below it is stored as rated spans; at most an hour behind.")
    rates_minute = models.BigIntegerField(
        null=True, blank=True, help_text="When the chunk's burn rates (AccrualRate) were last read for all of it.")
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
    Created in the same transaction as its rows, so a run id always names rows that
    exist. `USAGE_AFTER_METERING` hooks get this id.

    `accrued`: the window was charged per organisation (`UsageAccrual` rows, the open
    hour) rather than stored per resource. A run that is not accrued and closes an hour
    stores `[from, until)` as rated spans and *closes* the accrual runs of its chunk
    inside that window: its charge is its rated rows minus their accruals."""

    kind = models.CharField(max_length=8, choices=RunKind.choices, default=RunKind.METER)
    chunk = models.PositiveIntegerField(null=True, blank=True)
    from_minute = models.BigIntegerField()
    until_minute = models.BigIntegerField()
    accrued = models.BooleanField(default=False)
    rows = models.PositiveIntegerField(default=0)
    corrections = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    rolled_up_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["id"], condition=Q(rolled_up_at__isnull=True), name="usage_run_pending_rollup"),
            # The accrual runs an hour-closing run closes.
            models.Index(fields=["chunk", "from_minute"], condition=Q(accrued=True), name="usage_run_accrued"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} chunk {self.chunk}"
