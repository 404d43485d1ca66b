"""Retention of the metering detail: rated spans and accruals, by whole days.

`usage_ratedusage` (rated spans) and `usage_usageaccrual` (one row per organisation and
currency per accrual run: ~144M a day at 100,000 organisations) are each partitioned by
range of `start_minute`, one partition per UTC day (`<table>_pYYYYMMDD`), plus a DEFAULT
partition that catches rows of days without one (imports of old history, a correction
far back). Partitions are created a few days ahead by the hourly retention task, and a
day older than `USAGE_DETAIL_RETENTION_DAYS` is detached and dropped whole: no DELETE,
no vacuum debt, no index bloat, whatever the row count. A day of spans goes once its
runs are rolled up; a day of accruals once no chunk's open hour reaches back to it (the
run that closes an hour charges its spans minus that hour's accruals).

What is left in a DEFAULT partition past the retention is deleted in batches by id.

Hourly rollups older than `USAGE_HOURLY_RETENTION_DAYS` are deleted in batches; daily
rollups are kept for ever.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min, QuerySet
from django.utils import timezone

from usage.models import MeteringChunk, MeteringRun, RatedUsage, UsageAccrual, UsageHourly, to_minute

if TYPE_CHECKING:
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor

TABLE = "usage_ratedusage"
ACCRUALS = "usage_usageaccrual"
TABLES = (TABLE, ACCRUALS)
DAYS_AHEAD = 3
DELETE_BATCH = 10_000  # rows per DELETE (DEFAULT partition, hourly rollups): short locks, steady progress

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
        for _index, definition in indexes:
            cursor.execute(definition)


# The accruals' columns as a partitioned table (see `CREATE_PARTITIONED`).
CREATE_ACCRUALS_PARTITIONED = f"""
CREATE TABLE {ACCRUALS} (
    id bigint NOT NULL DEFAULT nextval('{ACCRUALS}_id_seq'),
    currency varchar(3) NOT NULL,
    start_minute bigint NOT NULL,
    end_minute bigint NOT NULL,
    amount numeric(30, 12) NOT NULL,
    organization_id bigint NOT NULL,
    run_id bigint NOT NULL,
    PRIMARY KEY (id, start_minute)
) PARTITION BY RANGE (start_minute)
"""
_ACCRUAL_COLUMNS = "id, currency, start_minute, end_minute, amount, organization_id, run_id"


def partition_accruals(schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Migration step: the accruals table (rows and all) becomes a partitioned one with
    the same columns, indexes and ids: a partition for every day of the retention from
    the oldest row on and for the days ahead, older rows into DEFAULT (the retention task
    deletes them).
    Takes a lock on the table for the copy: run it while metering is stopped or quiet.
    Does nothing to a table that is already partitioned (the migration applied again after
    a reversal, which leaves it partitioned)."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = %s", [ACCRUALS])
        if cursor.fetchone()[0] == "p":
            return
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT LIKE %s",
            [ACCRUALS, "%_pkey"],
        )
        indexes = cursor.fetchall()
        old = f"{ACCRUALS}_unpartitioned"
        cursor.execute(f"LOCK TABLE {ACCRUALS} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"ALTER TABLE {ACCRUALS} RENAME TO {old}")
        for name, _definition in indexes:
            cursor.execute(f"ALTER INDEX {name} RENAME TO {name}_old")
        cursor.execute(f"ALTER TABLE {old} ALTER COLUMN id DROP IDENTITY IF EXISTS")
        cursor.execute(f"CREATE SEQUENCE {ACCRUALS}_id_seq")
        cursor.execute(CREATE_ACCRUALS_PARTITIONED)
        cursor.execute(f"ALTER SEQUENCE {ACCRUALS}_id_seq OWNED BY {ACCRUALS}.id")
        cursor.execute(f"CREATE TABLE {ACCRUALS}_default PARTITION OF {ACCRUALS} DEFAULT")
        for _index, definition in indexes:
            cursor.execute(definition)  # "ON public.usage_usageaccrual": the new table
        cursor.execute(f"SELECT MIN(start_minute), MAX(id) FROM {old}")  # noqa: S608 - module constants
        first, max_id = cursor.fetchone()
        today = timezone.now().date()
        oldest = today - timedelta(days=settings.USAGE_DETAIL_RETENTION_DAYS)
        if first is not None:
            oldest = max(oldest, datetime.fromtimestamp(first * 60, tz=UTC).date())
        day = min(oldest, today - timedelta(days=1))
        while day <= today + timedelta(days=DAYS_AHEAD):
            lo, hi = _day_minute(day), _day_minute(day + timedelta(days=1))
            cursor.execute(f"CREATE TABLE {_name(day, ACCRUALS)} PARTITION OF {ACCRUALS} "
                           f"FOR VALUES FROM ({lo}) TO ({hi})")
            day += timedelta(days=1)
        cursor.execute(f"INSERT INTO {ACCRUALS} ({_ACCRUAL_COLUMNS}) "  # noqa: S608 - module constants
                       f"SELECT {_ACCRUAL_COLUMNS} FROM {old}")
        if max_id is not None:
            cursor.execute("SELECT setval(%s, %s)", [f"{ACCRUALS}_id_seq", max_id])
        cursor.execute(f"DROP TABLE {old}")


def _name(day: date, table: str = TABLE) -> str:
    return f"{table}_p{day:%Y%m%d}"


def _day_minute(day: date) -> int:
    return to_minute(datetime(day.year, day.month, day.day, tzinfo=UTC))


def existing_partitions(table: str = TABLE) -> dict[date, str]:
    pattern = re.compile(rf"^{table}_p(\d{{8}})$")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            [table],
        )
        out = {}
        for (name,) in cursor.fetchall():
            m = pattern.match(name)
            if m:
                out[datetime.strptime(m.group(1), "%Y%m%d").date()] = name
        return out


def ensure_partitions(*, today: date | None = None, days_ahead: int = DAYS_AHEAD) -> list[str]:
    """Create the daily partitions of every table from yesterday to `days_ahead` days ahead."""
    today = today or timezone.now().date()
    created = []
    for table in TABLES:
        created += _ensure_table_partitions(table, today, days_ahead)
    return created


def _ensure_table_partitions(table: str, today: date, days_ahead: int) -> list[str]:
    have = existing_partitions(table)
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
            default, range_ = f"{table}_default", "start_minute >= %s AND start_minute < %s"
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT COUNT(*) FROM {default} WHERE {range_}", [lo, hi])  # noqa: S608
                stray = cursor.fetchone()[0]
                if stray:
                    cursor.execute(f"CREATE TEMP TABLE _moving ON COMMIT DROP AS SELECT * FROM {default} "  # noqa: S608
                                   f"WHERE {range_}", [lo, hi])
                    cursor.execute(f"DELETE FROM {default} WHERE {range_}", [lo, hi])  # noqa: S608
                cursor.execute(f"CREATE TABLE {_name(day, table)} PARTITION OF {table} "
                               f"FOR VALUES FROM ({lo}) TO ({hi})")
                if stray:
                    cursor.execute(f"INSERT INTO {table} SELECT * FROM _moving")  # noqa: S608
                    cursor.execute("DROP TABLE _moving")  # the next table's may come in the same transaction
        created.append(_name(day, table))
    return created


def drop_expired(*, today: date | None = None) -> dict[str, int]:
    """Drop per-minute detail older than the retention (whole days; stragglers in DEFAULT by row),
    and hourly rollups older than theirs. Only spans whose runs are rolled up go, and only
    accruals older than every chunk's open hour."""
    today = today or timezone.now().date()
    cutoff_day = today - timedelta(days=settings.USAGE_DETAIL_RETENTION_DAYS)
    cutoff = _day_minute(cutoff_day)
    stats = {"partitions_dropped": 0, "rows_deleted": 0, "hourly_deleted": 0,
             "accrual_partitions_dropped": 0, "accruals_deleted": 0}
    # Whole days: detach and drop. What is left (DEFAULT partition) goes row by row below.
    for day, name in sorted(existing_partitions(TABLE).items()):
        if day >= cutoff_day:
            continue
        with transaction.atomic():
            if _has_pending_rollup(_day_minute(day), _day_minute(day + timedelta(days=1))):
                continue
            _drop(TABLE, name)
        stats["partitions_dropped"] += 1
    old = RatedUsage.objects.filter(start_minute__lt=cutoff)
    stats["rows_deleted"] = _delete_in_batches(old.filter(
        run_id__in=MeteringRun.objects.filter(rolled_up_at__isnull=False).values("id")))
    # Accruals: a chunk whose hour is still open (metering stopped for days) still needs
    # that hour's accruals, so nothing at or after the lowest rated mark goes.
    open_from = MeteringChunk.objects.aggregate(m=Min("rated_minute"))["m"]
    accrual_cutoff = cutoff if open_from is None else min(cutoff, open_from)
    for day, name in sorted(existing_partitions(ACCRUALS).items()):
        if _day_minute(day + timedelta(days=1)) > accrual_cutoff:
            continue
        with transaction.atomic():
            _drop(ACCRUALS, name)
        stats["accrual_partitions_dropped"] += 1
    stats["accruals_deleted"] = _delete_in_batches(UsageAccrual.objects.filter(start_minute__lt=accrual_cutoff))
    hourly_cutoff = timezone.now() - timedelta(days=settings.USAGE_HOURLY_RETENTION_DAYS)
    stats["hourly_deleted"] = _delete_in_batches(UsageHourly.objects.filter(hour__lt=hourly_cutoff))
    return stats


def _drop(table: str, name: str) -> None:
    """Names are module constants and the partitions' own names from the catalogue."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")


def _has_pending_rollup(lo: int, hi: int) -> bool:
    pending = MeteringRun.objects.filter(rolled_up_at__isnull=True).values("id")
    return RatedUsage.objects.filter(start_minute__gte=lo, start_minute__lt=hi, run_id__in=pending).exists()


def _delete_in_batches(qs: QuerySet[RatedUsage] | QuerySet[UsageHourly] | QuerySet[UsageAccrual]) -> int:
    total = 0
    while True:
        ids = list(qs.order_by("id").values_list("id", flat=True)[:DELETE_BATCH])
        if not ids:
            return total
        with transaction.atomic():
            total += qs.model.objects.filter(id__in=ids).delete()[0]
