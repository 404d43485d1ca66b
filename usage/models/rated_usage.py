"""Rated usage and the sums kept of it: month-to-date totals, hourly and daily rollups.

`RatedUsage` is append-only. A late event never edits a rated row: the rows it affects
get a `reversal` row each and the minutes are rated again as `correction` rows.
`ResourceMonthTotal` is the month-to-date amount a capped hourly price is clamped
against, kept by the rating statement itself. Rollups (`UsageHourly`, `UsageDaily`) are
sums of rated rows, added once per metering run (`MeteringRun.rolled_up_at` marks it in
the same transaction). `ImportedUsage` makes a legacy import add nothing the second time.
"""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Q

from core.money import currency_field, format_rate, money_field
from pricing.models import ResourceState
from usage.models.metering_state import MeteringRun
from usage.models.resources import Resource, from_minute


class RatedKind(models.TextChoices):
    CHARGE = "charge", "Charge"
    REVERSAL = "reversal", "Reversal (late event)"
    CORRECTION = "correction", "Correction (late event)"
    MINIMUM = "minimum", "Minimum billable time"
    IMPORT = "import", "Imported history"


class RatedUsage(models.Model):
    """A rated span: priced minutes of one resource and product in one state at one rate,
    inside one clock hour: `[start_minute, end_minute)`. Spans are stored when their hour
    closes (or when a late event corrects a closed hour), so a resource at a constant
    price and state has at most one row per product per hour, and none is written while
    the hour is open (its minutes are charged per organisation: `UsageAccrual`).

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
        return f"{self.resource_id} {self.state} {self.minutes}m {format_rate(self.amount, self.currency)}"

    @property
    def start(self) -> datetime:
        return from_minute(self.start_minute)

    @property
    def end(self) -> datetime:
        return from_minute(self.end_minute)


class UsageAccrual(models.Model):
    """The open hour's charge of one organisation in one currency over one accrual run's
    window `[start_minute, end_minute)`: its burn rate (`AccrualRate`) × the minutes,
    what the balances move by every minute while nothing is stored per resource. When
    the hour closes, the closing run charges its rated spans minus these, so the ledger
    ends exact whatever changed inside the hour. Partitioned by day of `start_minute`
    (primary key `(id, start_minute)` in the database) and kept
    `USAGE_DETAIL_RETENTION_DAYS`: whole days are dropped (`usage.partitions`)."""

    run = models.ForeignKey(
        MeteringRun, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    currency = currency_field()
    start_minute = models.BigIntegerField()
    end_minute = models.BigIntegerField()
    amount = money_field(help_text="Unrounded (12 places).")

    class Meta:
        # By run (the credit sync) and by organisation (month to date); retention drops
        # whole days, so no index on time.
        indexes = [
            models.Index(fields=["run"]),
            models.Index(fields=["organization", "start_minute"]),
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {format_rate(self.amount, self.currency)}"


class AccrualRate(models.Model):
    """An organisation's current burn rate in one currency, per hour: the sum of the
    rates in force for its resources (a capped price whose month is used up counts 0; a
    monthly price its hourly share). What the open hour accrues every minute, set-based
    per organisation. Computed for a whole chunk at its first accrual of each hour once
    the hour before is closed (with staggered closes, right after its close), and for an
    organisation again whenever a change point of one of its resources is consumed; a
    price book change is picked up after the chunk's next close (the closing run trues
    the hour up exactly either way)."""

    chunk = models.PositiveIntegerField()
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    currency = currency_field()
    rate_per_hour = money_field()
    minute = models.BigIntegerField(help_text="The minute the rate was read at.")

    class Meta:
        indexes = [models.Index(fields=["chunk"]), models.Index(fields=["organization"])]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.rate_per_hour}/h {self.currency}"


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
    # Of `minutes` and `amount`, what minimum billable time added (`minimum` rows, net of
    # their reversals), and what a monthly cap took off hourly spans (the span's price
    # before the clamp minus what was stored): "measured vs billable" (usage.billable).
    minimum_minutes = models.IntegerField(default=0, db_default=0)
    minimum_amount = money_field(default=0, db_default=0)
    cap_saved = money_field(default=0, db_default=0)

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
        return f"{self.resource_id} {self.hour:%Y-%m-%d %H:00} {format_rate(self.amount, self.currency)}"


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
        return f"{self.resource_id} {self.day} {format_rate(self.amount, self.currency)}"


class UsageDayTotal(models.Model):
    """`UsageDaily` summed over organisations and resources: per UTC day, currency,
    product, state and price (a few dozen rows a day), for the reports over the whole
    fleet. Kept by statement triggers on `usage_usagedaily` (migration
    0012_usage_day_totals), in the transaction and statement that change the rollup rows,
    whoever writes them: it always equals their sums (`test_day_totals`)."""

    day = models.DateField()
    currency = currency_field()
    product = models.ForeignKey("pricing.Product", on_delete=models.PROTECT, related_name="+", db_index=False)
    state = models.CharField(max_length=12, choices=ResourceState.choices)
    price_id = models.BigIntegerField(default=0, help_text="0: no price row (imported history).")
    minutes = models.BigIntegerField(default=0)
    amount = money_field()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "currency", "product", "state", "price_id"],
                                    name="usage_day_total_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.currency} {self.product_id} {self.state} {format_rate(self.amount, self.currency)}"


class UsageOrgMonth(models.Model):
    """`UsageDaily` summed over resources, states and prices: per organisation, currency,
    product and calendar month (a few rows per organisation a month), for the finance
    reports' split of a month's usage over products. Kept by statement triggers on
    `usage_usagedaily` (migration 0014_usage_org_months), in the transaction and
    statement that change the rollup rows, whoever writes them: it always equals their
    sums (`test_org_months`)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+",
                                     db_index=False)
    currency = currency_field()
    product = models.ForeignKey("pricing.Product", on_delete=models.PROTECT, related_name="+", db_index=False)
    month = models.DateField(help_text="The month's first day.")
    rows = models.BigIntegerField(default=0, help_text="How many rollup rows it sums (0: none left).")
    minutes = models.BigIntegerField(default=0)
    amount = money_field()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["month", "currency", "organization", "product"],
                                    name="usage_org_month_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.month:%Y-%m} {self.product_id} {format_rate(self.amount, self.currency)}"


class ImportedUsage(models.Model):
    """A legacy usage row already loaded by `import_usage`: its key makes a second run add nothing."""

    key = models.CharField(max_length=200, unique=True)
    rated_usage_id = models.BigIntegerField()
    imported_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key
