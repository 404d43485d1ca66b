"""Event storage: `usage_usageevent` partitioned by day of event time, `usage_eventkey`
(the dedup window) partitioned by bucket of receipt time, both with retention.

Events are partitioned by `occurred_at`, the event's own time, not by receipt time: every
reader asks for a time range of events (invoices' metered quantities of a month), and
ingestion only accepts times from `USAGE_MAX_EVENT_AGE` (7 days) ago to 5 minutes ahead,
so every event lands in one of the last eight days' partitions. One partition per UTC
day (`usage_usageevent_pYYYYMMDD`), plus a DEFAULT partition for rows of days without one
(demo data, history older than the partitions made when the table was converted). The
hourly `usage.retention` task creates the days from `USAGE_MAX_EVENT_AGE` back to
`DAYS_AHEAD` ahead and detaches and drops days older than `USAGE_EVENT_RETENTION_DAYS`
(rows past it left in DEFAULT are deleted in batches). The retention must cover what
reads raw events: invoices aggregate a month's metered events after the month ends.

`usage_eventkey (digest uuid, bucket int)`, primary key `(digest, bucket)`, is range
partitioned by `bucket` (one partition a bucket of `DEDUP_WINDOW_DAYS`, plus DEFAULT):
see `usage.models.events` for the window it gives. Ingestion in bucket k reads and writes
only k and k + 1, so a bucket's partition is dropped whole once it is over.

Nothing here deletes with a trigger disabled or needs a superuser: DDL on tables the
application owns.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone

from usage.models.events import DEDUP_WINDOW_DAYS, dedup_bucket

if TYPE_CHECKING:
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.backends.utils import CursorWrapper

EVENTS = "usage_usageevent"
KEYS = "usage_eventkey"
DAYS_AHEAD = 3
BUCKETS_AHEAD = 2  # the current bucket, the next one (written by every event) and one more
DELETE_BATCH = 10_000
# Invoices read a month's metered events after the month ends: two months at least.
MIN_RETENTION_DAYS = 62
_EVENT_PARTITION_RE = re.compile(rf"^{EVENTS}_p(\d{{8}})$")
_KEY_PARTITION_RE = re.compile(rf"^{KEYS}_b(\d+)$")

COLUMNS = ("id", "event_id", "type", "occurred_at", "minute", "received_at", "metric", "quantity",
           "organization_id", "product_id", "resource_id")

# The columns Django's migrations give the table, as a partitioned table: the primary key
# must include the partition key, and PostgreSQL 15 has no identity columns on partitioned
# tables, so the id comes from a sequence.
CREATE_EVENTS = f"""
CREATE TABLE {EVENTS} (
    id bigint NOT NULL DEFAULT nextval('{EVENTS}_id_seq'),
    event_id varchar(200) NOT NULL,
    type varchar(16) NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    minute bigint NOT NULL,
    received_at timestamp with time zone NOT NULL,
    metric varchar(60) NOT NULL,
    quantity numeric(30, 12) NULL,
    organization_id bigint NOT NULL,
    product_id bigint NULL,
    resource_id bigint NOT NULL,
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at)
"""

CREATE_KEYS = f"""
CREATE TABLE {KEYS} (
    digest uuid NOT NULL,
    bucket integer NOT NULL,
    PRIMARY KEY (digest, bucket)
) PARTITION BY RANGE (bucket)
"""


def day_start(day: date) -> str:
    return f"{day:%Y-%m-%d} 00:00:00+00"


def _event_partition(day: date) -> str:
    return f"{EVENTS}_p{day:%Y%m%d}"


def _key_partition(bucket: int) -> str:
    return f"{KEYS}_b{bucket}"


def _children(cursor: CursorWrapper, parent: str) -> list[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
        [parent],
    )
    return [name for (name,) in cursor.fetchall()]


def event_partitions() -> dict[date, str]:
    with connection.cursor() as cursor:
        out = {}
        for name in _children(cursor, EVENTS):
            m = _EVENT_PARTITION_RE.match(name)
            if m:
                out[datetime.strptime(m.group(1), "%Y%m%d").date()] = name
        return out


def key_partitions() -> dict[int, str]:
    with connection.cursor() as cursor:
        out = {}
        for name in _children(cursor, KEYS):
            m = _KEY_PARTITION_RE.match(name)
            if m:
                out[int(m.group(1))] = name
        return out


def _create_partition(cursor: CursorWrapper, parent: str, name: str, column: str, lo: str, hi: str) -> None:
    """Create partition `name` of `parent` for [lo, hi), moving rows of that range out of
    DEFAULT first (they would make the bounds invalid). Names and bounds are built here
    from dates and integers: nothing from outside reaches this SQL."""
    default, where = f"{parent}_default", f"{column} >= {lo} AND {column} < {hi}"
    cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {default} WHERE {where})")  # noqa: S608
    stray = cursor.fetchone()[0]
    if stray:
        cursor.execute(f"CREATE TEMP TABLE _moving ON COMMIT DROP AS SELECT * FROM {default} WHERE {where}")  # noqa: S608
        cursor.execute(f"DELETE FROM {default} WHERE {where}")  # noqa: S608
    cursor.execute(f"CREATE TABLE {name} PARTITION OF {parent} FOR VALUES FROM ({lo}) TO ({hi})")
    if stray:
        cursor.execute(f"INSERT INTO {parent} SELECT * FROM _moving")  # noqa: S608
        cursor.execute("DROP TABLE _moving")


def ensure_event_partitions(*, today: date | None = None) -> list[str]:
    """Create the event days from the oldest an event may have (USAGE_MAX_EVENT_AGE) to
    DAYS_AHEAD ahead, and the dedup buckets from the current one to BUCKETS_AHEAD ahead."""
    today = today or timezone.now().date()
    days = event_partitions()
    created = []
    for offset in range(-(settings.USAGE_MAX_EVENT_AGE.days + 1), DAYS_AHEAD + 1):
        day = today + timedelta(days=offset)
        if day in days:
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            _create_partition(cursor, EVENTS, _event_partition(day), "occurred_at",
                              f"'{day_start(day)}'", f"'{day_start(day + timedelta(days=1))}'")
        created.append(_event_partition(day))
    buckets = key_partitions()
    current = dedup_bucket(datetime(today.year, today.month, today.day, tzinfo=UTC))
    for bucket in range(current, current + BUCKETS_AHEAD + 1):
        if bucket in buckets:
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            _create_partition(cursor, KEYS, _key_partition(bucket), "bucket", str(bucket), str(bucket + 1))
        created.append(_key_partition(bucket))
    return created


def drop_expired_events(*, today: date | None = None) -> dict[str, int]:
    """Drop event days older than USAGE_EVENT_RETENTION_DAYS (whole partitions; rows in
    DEFAULT by batches) and dedup buckets before the current one."""
    retention = settings.USAGE_EVENT_RETENTION_DAYS
    if retention < MIN_RETENTION_DAYS:
        raise ImproperlyConfigured(f"USAGE_EVENT_RETENTION_DAYS must be at least {MIN_RETENTION_DAYS}: invoices "
                                   "read a month's metered events after the month ends.")
    today = today or timezone.now().date()
    cutoff_day = today - timedelta(days=retention)
    stats = {"event_partitions_dropped": 0, "events_deleted": 0, "key_partitions_dropped": 0, "keys_deleted": 0}
    for day, name in sorted(event_partitions().items()):
        if day < cutoff_day:
            _drop(EVENTS, name)
            stats["event_partitions_dropped"] += 1
    stats["events_deleted"] = _delete_in_batches(
        "SELECT id, occurred_at FROM usage_usageevent_default WHERE occurred_at < %s LIMIT %s",
        "DELETE FROM usage_usageevent_default WHERE (id, occurred_at) IN "
        "(SELECT * FROM unnest(%s::bigint[], %s::timestamptz[]))",
        [day_start(cutoff_day), DELETE_BATCH])
    current = dedup_bucket(datetime(today.year, today.month, today.day, tzinfo=UTC))
    for bucket, name in sorted(key_partitions().items()):
        if bucket < current:
            _drop(KEYS, name)
            stats["key_partitions_dropped"] += 1
    with transaction.atomic(), connection.cursor() as cursor:
        # Only a bucket without its partition (the task did not run for a whole window) is here.
        cursor.execute(f"DELETE FROM {KEYS}_default WHERE bucket < %s", [current])  # noqa: S608
        stats["keys_deleted"] = cursor.rowcount
    return stats


def _drop(parent: str, name: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {parent} DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")


def _delete_in_batches(select: str, delete: str, params: list) -> int:
    total = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(select, params)
            rows = cursor.fetchall()
            if not rows:
                return total
            cursor.execute(delete, [[r[0] for r in rows], [r[1] for r in rows]])
            total += cursor.rowcount


def dedup_window_start(now: datetime) -> datetime:
    """The start of `now`'s dedup bucket (for the docs and tests)."""
    bucket = dedup_bucket(now)
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=bucket * DEDUP_WINDOW_DAYS)


# --- Migration: the plain table (with its rows) becomes the partitioned one. ------------

def convert(schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Replace the plain events table by the partitioned one and create the dedup keys,
    keeping every row: the rows are copied into day partitions (the last
    USAGE_EVENT_RETENTION_DAYS that have events, and the days ahead) or DEFAULT (older
    ones, which the retention task then deletes), the id sequence continues where the old
    identity stopped, and the ids of events received in the last two buckets are entered
    as keys, so a duplicate sent across the migration is still refused."""
    now = timezone.now()
    today = now.date()
    cols = ", ".join(COLUMNS)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM usage_usageevent")
        max_id = cursor.fetchone()[0]
        cursor.execute(f"ALTER TABLE {EVENTS} RENAME TO {EVENTS}_plain")
        # Index names are the schema's: the old table's give theirs up to the new table's.
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [f"{EVENTS}_plain"])
        for (index,) in cursor.fetchall():
            cursor.execute(f'ALTER INDEX "{index}" RENAME TO "{index[:50]}_plain"')
        # Drops the identity's sequence, whose name the new one takes.
        cursor.execute(f"ALTER TABLE {EVENTS}_plain ALTER COLUMN id DROP IDENTITY")
        cursor.execute(f"CREATE SEQUENCE {EVENTS}_id_seq")
        cursor.execute(CREATE_EVENTS)
        cursor.execute(f"ALTER SEQUENCE {EVENTS}_id_seq OWNED BY {EVENTS}.id")
        if max_id:
            cursor.execute("SELECT setval(%s, %s)", [f"{EVENTS}_id_seq", max_id])
        cursor.execute(f"CREATE TABLE {EVENTS}_default PARTITION OF {EVENTS} DEFAULT")
        cursor.execute(
            "CREATE INDEX usage_event_metered_idx ON usage_usageevent (organization_id, metric, occurred_at) "
            "WHERE type = 'metered'")
        oldest = today - timedelta(days=settings.USAGE_EVENT_RETENTION_DAYS)
        cursor.execute(f"SELECT DISTINCT (occurred_at AT TIME ZONE 'UTC')::date FROM {EVENTS}_plain "  # noqa: S608
                       "WHERE occurred_at >= %s", [day_start(oldest)])
        days = {d for (d,) in cursor.fetchall()}
        days |= {today + timedelta(days=o) for o in range(-(settings.USAGE_MAX_EVENT_AGE.days + 1), DAYS_AHEAD + 1)}
        for day in sorted(days):
            cursor.execute(f"CREATE TABLE {_event_partition(day)} PARTITION OF {EVENTS} FOR VALUES FROM "
                           f"('{day_start(day)}') TO ('{day_start(day + timedelta(days=1))}')")
        cursor.execute(f"INSERT INTO {EVENTS} ({cols}) SELECT {cols} FROM {EVENTS}_plain")  # noqa: S608

        cursor.execute(CREATE_KEYS)
        cursor.execute(f"CREATE TABLE {KEYS}_default PARTITION OF {KEYS} DEFAULT")
        current = dedup_bucket(now)
        for bucket in range(current, current + BUCKETS_AHEAD + 1):
            cursor.execute(f"CREATE TABLE {_key_partition(bucket)} PARTITION OF {KEYS} "
                           f"FOR VALUES FROM ({bucket}) TO ({bucket + 1})")
        # An event received in bucket b holds b and b + 1; only buckets from the current one on are read.
        cursor.execute(f"""
            INSERT INTO {KEYS} (digest, bucket)
            SELECT DISTINCT md5(e.event_id)::uuid, v.b
            FROM (SELECT event_id, (floor(extract(epoch FROM received_at) / 86400))::int / %(w)s AS rb
                  FROM {EVENTS}_plain WHERE received_at >= %(since)s) AS e
            CROSS JOIN LATERAL (VALUES (e.rb), (e.rb + 1)) AS v(b)
            WHERE v.b >= %(current)s
            ON CONFLICT DO NOTHING
        """, {"w": DEDUP_WINDOW_DAYS, "current": current,  # noqa: S608
              "since": datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=(current - 1) * DEDUP_WINDOW_DAYS)})
        cursor.execute(f"DROP TABLE {EVENTS}_plain")


def unconvert(schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Back to the plain table with a unique event id, keeping the rows (ids seen in
    several windows keep their latest event)."""
    cols = ", ".join(COLUMNS)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {KEYS}")
        cursor.execute(f"ALTER TABLE {EVENTS} RENAME TO {EVENTS}_partitioned")
        cursor.execute(f"ALTER SEQUENCE {EVENTS}_id_seq RENAME TO {EVENTS}_partitioned_id_seq")
        cursor.execute(f"ALTER INDEX {EVENTS}_pkey RENAME TO {EVENTS}_partitioned_pkey")
        cursor.execute("DROP INDEX IF EXISTS usage_event_metered_idx")
        cursor.execute(f"""
            CREATE TABLE {EVENTS} (
                id bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                event_id varchar(200) NOT NULL CONSTRAINT usage_usageevent_event_id_key UNIQUE,
                type varchar(16) NOT NULL,
                occurred_at timestamp with time zone NOT NULL,
                minute bigint NOT NULL,
                received_at timestamp with time zone NOT NULL,
                metric varchar(60) NOT NULL,
                quantity numeric(30, 12) NULL,
                organization_id bigint NOT NULL,
                product_id bigint NULL,
                resource_id bigint NOT NULL
            )""")
        cursor.execute(f"INSERT INTO {EVENTS} ({cols}) SELECT DISTINCT ON (event_id) {cols} "  # noqa: S608
                       f"FROM {EVENTS}_partitioned ORDER BY event_id, received_at DESC")
        cursor.execute("SELECT setval(pg_get_serial_sequence('usage_usageevent', 'id'), "
                       "GREATEST((SELECT last_value FROM usage_usageevent_partitioned_id_seq), 1))")
        cursor.execute(f"DROP TABLE {EVENTS}_partitioned")
        # The history may name events dropped past retention: the foreign key comes back.
        cursor.execute(f"UPDATE usage_stateinterval s SET event_id = NULL WHERE event_id IS NOT NULL "  # noqa: S608
                       f"AND NOT EXISTS (SELECT 1 FROM {EVENTS} e WHERE e.id = s.event_id)")
        cursor.execute("CREATE INDEX usage_usageevent_event_id_2a99b2dd_like ON usage_usageevent "
                       "(event_id varchar_pattern_ops)")
        cursor.execute("CREATE INDEX usage_event_metered_idx ON usage_usageevent (organization_id, metric, "
                       "occurred_at) WHERE type = 'metered'")
