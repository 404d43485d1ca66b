"""Retention of per-minute detail.

`usage_ratedusage` is partitioned by range of `start_minute`, one partition
per UTC day (`usage_ratedusage_pYYYYMMDD`), plus a DEFAULT partition that catches rows
of days without one (imports of old history, a correction far back). Partitions are
created a few days ahead by the hourly retention task, and a day older than
`USAGE_DETAIL_RETENTION_DAYS` is detached and dropped whole: no DELETE, no vacuum debt,
no index bloat, whatever the row count. At 100,000 running resources that is ~144M rows
a day, which is why whole-partition drops are the only cheap way.

What is left in the DEFAULT partition past the retention is deleted in batches by id.

Hourly rollups older than `USAGE_HOURLY_RETENTION_DAYS` are deleted in batches; daily
rollups are kept for ever.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from usage.models import MeteringRun, RatedUsage, UsageHourly, to_minute

if TYPE_CHECKING:
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor

TABLE = "usage_ratedusage"
DAYS_AHEAD = 3
DELETE_BATCH = 10_000  # rows per DELETE (DEFAULT partition, hourly rollups): short locks, steady progress
_PARTITION_RE = re.compile(rf"^{TABLE}_p(\d{{8}})$")

# The columns Django's migration gives the table, as a partitioned table: the primary key
# must include the partition key, and PostgreSQL 15 has no identity columns on partitioned
# tables, so the id comes from a sequence.
CREATE_PARTITIONED = f"""
CREATE TABLE {TABLE} (
    id bigint NOT NULL DEFAULT nextval('{TABLE}_id_seq'),
    state varchar(12) NOT NULL,
    kind varchar(10) NOT NULL,
    start_minute bigint NOT NULL,
    end_minute bigint NOT NULL,
    minutes integer NOT NULL,
    unit varchar(8) NOT NULL,
    unit_rate numeric(30, 12) NOT NULL,
    amount numeric(30, 12) NOT NULL,
    currency varchar(3) NOT NULL,
    price_id bigint NULL,
    contract_id bigint NULL,
    corrects_id bigint NULL,
    organization_id bigint NOT NULL,
    product_id bigint NOT NULL,
    run_id bigint NOT NULL,
    resource_id bigint NOT NULL,
    PRIMARY KEY (id, start_minute)
) PARTITION BY RANGE (start_minute)
"""


def partition_table(schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Migration step: replace the plain table (empty at this point) by a partitioned one
    with the same columns and indexes."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT LIKE %s",
            [TABLE, "%_pkey"],
        )
        indexes = cursor.fetchall()
        cursor.execute(f"DROP TABLE {TABLE}")
        cursor.execute(f"CREATE SEQUENCE {TABLE}_id_seq")
        cursor.execute(CREATE_PARTITIONED)
        cursor.execute(f"ALTER SEQUENCE {TABLE}_id_seq OWNED BY {TABLE}.id")
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
        for _name, definition in indexes:
            cursor.execute(definition)


def _name(day: date) -> str:
    return f"{TABLE}_p{day:%Y%m%d}"


def _day_minute(day: date) -> int:
    return to_minute(datetime(day.year, day.month, day.day, tzinfo=UTC))


def existing_partitions() -> dict[date, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            [TABLE],
        )
        out = {}
        for (name,) in cursor.fetchall():
            m = _PARTITION_RE.match(name)
            if m:
                out[datetime.strptime(m.group(1), "%Y%m%d").date()] = name
        return out


def ensure_partitions(*, today: date | None = None, days_ahead: int = DAYS_AHEAD) -> list[str]:
    """Create the daily partitions from yesterday to `days_ahead` days ahead."""
    today = today or timezone.now().date()
    have = existing_partitions()
    created = []
    for offset in range(-1, days_ahead + 1):
        day = today + timedelta(days=offset)
        if day in have:
            continue
        with transaction.atomic():
            # Rows of that day already in DEFAULT would make the new partition's bounds
            # invalid; they can only be there if the task did not run for days. Move them.
            lo, hi = _day_minute(day), _day_minute(day + timedelta(days=1))
            # Table names are module constants and dates: nothing from outside reaches this SQL.
            default, range_ = f"{TABLE}_default", "start_minute >= %s AND start_minute < %s"
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT COUNT(*) FROM {default} WHERE {range_}", [lo, hi])  # noqa: S608
                stray = cursor.fetchone()[0]
                if stray:
                    cursor.execute(f"CREATE TEMP TABLE _moving ON COMMIT DROP AS SELECT * FROM {default} "  # noqa: S608
                                   f"WHERE {range_}", [lo, hi])
                    cursor.execute(f"DELETE FROM {default} WHERE {range_}", [lo, hi])  # noqa: S608
                cursor.execute(f"CREATE TABLE {_name(day)} PARTITION OF {TABLE} FOR VALUES FROM ({lo}) TO ({hi})")
                if stray:
                    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM _moving")  # noqa: S608
        created.append(_name(day))
    return created


def drop_expired(*, today: date | None = None) -> dict[str, int]:
    """Drop per-minute detail older than the retention (whole days; stragglers in DEFAULT by row),
    and hourly rollups older than theirs. Only detail whose runs are rolled up goes."""
    today = today or timezone.now().date()
    cutoff_day = today - timedelta(days=settings.USAGE_DETAIL_RETENTION_DAYS)
    cutoff = _day_minute(cutoff_day)
    stats = {"partitions_dropped": 0, "rows_deleted": 0, "hourly_deleted": 0}
    # Whole days: detach and drop. What is left (DEFAULT partition) goes row by row below.
    for day, name in sorted(existing_partitions().items()):
        if day >= cutoff_day:
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            if _has_pending_rollup(_day_minute(day), _day_minute(day + timedelta(days=1))):
                continue
            cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name}")
            cursor.execute(f"DROP TABLE {name}")
        stats["partitions_dropped"] += 1
    old = RatedUsage.objects.filter(start_minute__lt=cutoff)
    stats["rows_deleted"] = _delete_in_batches(old.filter(
        run_id__in=MeteringRun.objects.filter(rolled_up_at__isnull=False).values("id")))
    hourly_cutoff = timezone.now() - timedelta(days=settings.USAGE_HOURLY_RETENTION_DAYS)
    stats["hourly_deleted"] = _delete_in_batches(UsageHourly.objects.filter(hour__lt=hourly_cutoff))
    return stats


def _has_pending_rollup(lo: int, hi: int) -> bool:
    pending = MeteringRun.objects.filter(rolled_up_at__isnull=True).values("id")
    return RatedUsage.objects.filter(start_minute__gte=lo, start_minute__lt=hi, run_id__in=pending).exists()


def _delete_in_batches(qs: QuerySet[RatedUsage] | QuerySet[UsageHourly]) -> int:
    total = 0
    while True:
        ids = list(qs.order_by("id").values_list("id", flat=True)[:DELETE_BATCH])
        if not ids:
            return total
        with transaction.atomic():
            total += qs.model.objects.filter(id__in=ids).delete()[0]
