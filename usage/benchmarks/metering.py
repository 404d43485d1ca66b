"""The whole minute of metering as Celery runs it, committed, against bare SQL doing the same writes.

What a minute is: the bodies of the per-minute tasks, one after another in this process —
`usage.meter_chunk` for every chunk (each slice commits; its on-commit hook, the credit
sync `credits.sync.after_metering`, moves the balances and posts the ledger), then
`usage.rollup` (hourly and daily series). Nothing is rolled back: every write is
committed, as in production. On the real deployment the chunk tasks run on several
workers; here they run in one process, so the figure is the work of the minute, not its
latency on a cluster.

The data: `--orgs` prepaid organisations (an opening balance each, ledgered) and
`--resources` servers running since a day before (each organisation's servers cycle
through two capped CPU prices and two uncapped GPU prices, an organisation's first server in every ten with a backup add-on, so every chunk alike), metered up to five minutes before
an hour ends. One warm-up minute, then the minutes up to and including the one that
closes the hour, each timed, and the minute after it (the chunks that closed read their
organisations' burn rates again).

The baseline, measured in the same run right after each minute: PostgreSQL's own counters
(`pg_stat_user_tables`, partitions folded into their table) say how many rows the minute
inserted, updated and deleted in each table; bare SQL then makes as many writes to the
same tables (same indexes, the real partitioned table), copying the rows the minute wrote
(realistic data) and updating as many of its rows, in one committed transaction per
table. That is the least any metering design writing those rows must pay.

Last line: the slowest minute (every minute must fit in 60 s, the hour-closing one too)
beside its own baseline; `rows_per_resource_hour` is rated rows written per resource over
an hour of such minutes (the ordinary ones and the closing ones: the beat task staggers
the chunks' hour closes, chunk k at k·60/n minutes past the hour, so the measured closing
minute holds one chunk's close).

Where: by default a scratch database is created (Django's test-database machinery:
CREATEDB, no superuser), migrated, used and dropped at the end, so the ledger stays
append-only (no trigger is disabled) and nothing is left behind. `--in-place` uses the
current database as it is (the smoke test does, inside its throwaway test database).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Organization
from pricing.models import BillingModel, Price, PriceUnit, Product, ProductGroup, ProductKind, ResourceState
from usage.models import AddonAttachment, MeteringChunk, Resource, from_minute, to_minute

OPENING = Decimal("1000000")
STEADY_MINUTES = 3  # timed ordinary minutes before the one that closes the hour


def add_arguments(parser):
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--chunks", type=int, default=None,
                        help="USAGE_METERING_CHUNKS for the run; default: the sizing rule for --resources "
                             "(usage.metering.chunks_for_fleet).")
    parser.add_argument("--in-place", action="store_true",
                        help="Use the current database (leaves the fleet behind); default: a scratch database.")


def run(options: dict, stdout) -> str:
    if options.get("in_place"):
        return _run(options, stdout)
    old_name = connection.settings_dict["NAME"]
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"{old_name}_bench"
    started = time.perf_counter()
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    stdout.write(f"scratch database {connection.settings_dict['NAME']} migrated in "
                 f"{time.perf_counter() - started:.1f}s\n")
    try:
        return _run(options, stdout)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


@dataclass
class Minute:
    label: str
    seconds: float
    writes: dict[str, tuple[int, int, int]]  # table: (inserted, updated, deleted)
    baseline: float = 0.0

    @property
    def rated_rows(self) -> int:
        return self.writes.get("usage_ratedusage", (0, 0, 0))[0]


def _run(options: dict, stdout) -> str:
    from django.test.utils import override_settings

    from usage import metering

    chunks = options.get("chunks") or metering.chunks_for_fleet(options["resources"])
    stdout.write(f"chunks: {chunks} (USAGE_METERING_CHUNKS for this run)\n")
    with override_settings(USAGE_METERING_CHUNKS=chunks):
        return _run_minutes(options, stdout)


def _run_minutes(options: dict, stdout) -> str:
    from usage import metering, tasks

    resources, orgs = options["resources"], options["orgs"]
    now = to_minute(timezone.now())
    hour_end = (now // 60 - 2) * 60  # an hour that ended two hours ago: every minute of it is rateable
    start = hour_end - 5
    _build(resources, orgs, start - 24 * 60, stdout)
    _opening_balances(orgs)
    metering.ensure_chunks()
    _set_watermarks(start - 1)

    def minute(until: int) -> float:
        begun = time.perf_counter()
        for chunk in range(metering.chunk_count()):
            tasks.meter_chunk_task.run(chunk, until)
        tasks.rollup_task.run()
        return time.perf_counter() - begun

    minute(start)  # warm-up: minute start - 1
    minutes: list[Minute] = []
    closed: list[int] = [0]
    for until in range(start + 1, hour_end + 1):
        before = _counters()
        seconds = minute(until)
        writes = _delta(before, _counters())
        label = "hour close" if until % 60 == 0 else "minute"
        minutes.append(Minute(label, seconds, writes, _baseline(writes)))
        if until < hour_end and len(minutes) >= STEADY_MINUTES:
            # Skip to the closing minute (the ones between are like these).
            for skipped in range(until + 1, hour_end):
                minute(skipped)
            minutes.append(_measure_close(minute, hour_end))
            # The chunks the closing minute closed (before the next minute closes more).
            closed = list(MeteringChunk.objects.filter(rated_minute=hour_end).values_list("number", flat=True)) or [0]
            # The next minute: the chunks that closed their hour read their burn rates
            # again (`AccrualRate`, from the same pricing as the spans), and with more than
            # 60 chunks the next ones close.
            minutes.append(_measure(minute, hour_end + 1, "hour start"))
            break
    for m in minutes:
        described = ", ".join(f"{t} +{i}/~{u}/-{d}" for t, (i, u, d) in sorted(m.writes.items()) if i or u or d)
        stdout.write(f"{m.label}: {m.seconds:.3f}s, baseline {m.baseline:.3f}s; writes {described}\n")

    steady = [m for m in minutes if m.label == "minute"]
    close = [m for m in minutes if m.label == "hour close"]
    # The beat task staggers the closes (chunk k closes its hour k·60/n minutes late):
    # the measured closing minute holds `closed` of the n chunks, and an hour has n/closed
    # such minutes.
    n = metering.chunk_count()
    closing_minutes = n / len(closed)
    # Rows are counted per priced item: a server, or an add-on attached to it (billed at
    # its own price, so its own span: the span is (resource, price, state, start,
    # end)). Per server, the figure is printed on the line before the last.
    servers_closed = Resource.objects.alias(c=F("organization_id") % n).filter(c__in=closed).count() or resources
    addons = AddonAttachment.objects.filter(end_minute__isnull=True)
    addons_closed = addons.alias(c=F("organization_id") % n).filter(c__in=closed).count()
    steady_rows = statistics.mean(m.rated_rows for m in steady) * (60 - closing_minutes)
    per_resource_hour = steady_rows / (resources + addons.count()) + close[0].rated_rows / (
        servers_closed + addons_closed)
    per_server_hour = steady_rows / resources + close[0].rated_rows / servers_closed
    # One minute an hour reads the burn rates again instead of being an ordinary one.
    start_extra = sum(m.seconds for m in minutes if m.label == "hour start") - statistics.mean(
        m.seconds for m in steady)
    mean_minute = (statistics.mean(m.seconds for m in steady) * (60 - closing_minutes)
                   + close[0].seconds * closing_minutes + start_extra) / 60
    products = close[0].writes.get("usage_usagehourly", (0, 0, 0))
    stdout.write(f"mean over an hour of minutes: {mean_minute:.3f}s; rated rows per priced item (server or "
                 f"attached add-on) and hour {per_resource_hour:.2f}, per server {per_server_hour:.2f} (one in "
                 f"ten servers has an add-on, rated as its own span at its own price; hourly rollup rows "
                 f"written at the close: {products[0] + products[1]})\n")
    worst = max(minutes, key=lambda m: m.seconds)
    return (f"metering resources={resources} orgs={orgs} seconds={worst.seconds:.3f} "
            f"baseline_seconds={worst.baseline:.3f} ratio={worst.seconds / worst.baseline:.2f} "
            f"rows_per_resource_hour={per_resource_hour:.2f}")


def _measure_close(minute, hour_end: int) -> Minute:
    return _measure(minute, hour_end, "hour close")


def _measure(minute, until: int, label: str) -> Minute:
    before = _counters()
    seconds = minute(until)
    writes = _delta(before, _counters())
    return Minute(label, seconds, writes, _baseline(writes))


def _set_watermarks(minute: int) -> None:
    """As if every chunk had been metered and stored up to `minute`."""
    MeteringChunk.objects.update(watermark_minute=minute, rated_minute=minute)


# --- The fleet -------------------------------------------------------------------

def _build(resources: int, orgs: int, since_minute: int, stdout) -> None:
    started = time.perf_counter()
    since = from_minute(since_minute)
    with transaction.atomic():
        group, _ = ProductGroup.objects.get_or_create(slug="bench", defaults={"name": "Benchmark"})
        products = []
        for n, (kind, cap) in enumerate([("cpu", "50.00"), ("cpu", "90.00"), ("gpu", None), ("gpu", None)]):
            p = Product.objects.create(code=f"bench-{kind}-{n}-{since_minute}", name=f"bench {kind} {n}", group=group,
                                       kind=ProductKind.SERVER, billing_model=BillingModel.HOURLY)
            Price.objects.create(product=p, currency="USD", state=ResourceState.RUNNING, unit=PriceUnit.HOUR,
                                 amount=Decimal("0.119") * (n + 1) * (10 if kind == "gpu" else 1),
                                 monthly_cap=None if cap is None else Decimal(cap), valid_from=since)
            products.append(p)
        addon = Product.objects.create(code=f"bench-backup-{since_minute}", name="bench backup", group=group,
                                       kind=ProductKind.ADDON, billing_model=BillingModel.ADDON)
        Price.objects.create(product=addon, currency="USD", state=ResourceState.RUNNING, unit=PriceUnit.HOUR,
                             amount=Decimal("0.01"), valid_from=since)
        Organization.objects.bulk_create(
            [Organization(name=f"bench {n}", slug=f"bench-{since_minute}-{n}", currency="USD") for n in range(orgs)],
            batch_size=2000,
        )
        params = {"t0": since_minute, "since": since, "n": resources, "slug": f"bench-{since_minute}-%",
                  "products": [p.pk for p in products], "addon": addon.pk}
        with connection.cursor() as cursor:
            cursor.execute("""
                WITH o AS (SELECT array_agg(id ORDER BY id) AS ids FROM accounts_organization WHERE slug LIKE %(slug)s)
                INSERT INTO usage_resource (organization_id, external_id, kind, name, product_id, state, state_since,
                                            created_at)
                SELECT o.ids[1 + (g %% cardinality(o.ids))], 'bench-' || %(t0)s || '-' || g, 'server', 'bench ' || g,
                       (%(products)s::bigint[])[1 + ((g / cardinality(o.ids)) %% 4)], 'running', %(since)s, now()
                FROM o, generate_series(0, %(n)s - 1) AS g
            """, params)
            cursor.execute("""
                INSERT INTO usage_stateinterval (resource_id, organization_id, started_at, start_minute, end_minute,
                                                 state, product_id, eff_state, eff_product_id, source, reason,
                                                 recorded_at)
                SELECT id, organization_id, %(since)s, %(t0)s, NULL, 'running', product_id, 'running', product_id,
                       'event', '', now()
                FROM usage_resource WHERE external_id LIKE 'bench-' || %(t0)s || '-%%'
            """, params)
            cursor.execute("""
                INSERT INTO usage_addonattachment (resource_id, organization_id, product_id, start_minute, end_minute,
                                                   attached_at)
                SELECT id, organization_id, %(addon)s, %(t0)s, NULL, %(since)s
                FROM (SELECT id, organization_id, row_number() OVER (PARTITION BY organization_id ORDER BY id) AS k
                      FROM usage_resource WHERE external_id LIKE 'bench-' || %(t0)s || '-%%') r
                WHERE k %% 10 = 1
            """, params)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE usage_resource; ANALYZE usage_stateinterval; ANALYZE usage_addonattachment; "
                       "ANALYZE accounts_organization; ANALYZE pricing_price;")
    stdout.write(f"fleet: {orgs} organisations, {resources} running servers, built in "
                 f"{time.perf_counter() - started:.1f}s\n")


def _opening_balances(orgs: int) -> None:
    """Every benchmark organisation prepaid: a ledgered opening balance."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            WITH fresh AS (
                INSERT INTO credits_ledgerentry (organization_id, currency, kind, amount, promo_amount, balance_after,
                                                 reason, reference, created_at)
                SELECT id, 'USD', 'topup', %(opening)s, 0, %(opening)s, 'Benchmark opening balance', 'bench:opening',
                       %(now)s
                FROM accounts_organization WHERE slug LIKE 'bench-%%'
                  AND NOT EXISTS (SELECT 1 FROM credits_balance b WHERE b.organization_id = accounts_organization.id)
                RETURNING organization_id
            )
            INSERT INTO credits_balance (organization_id, currency, amount, promo_amount, burn_rate_per_hour,
                                         warnings_sent, hibernated_resources, updated_at)
            SELECT organization_id, 'USD', %(opening)s, 0, 0, '[]'::jsonb, '[]'::jsonb, %(now)s FROM fresh
            """,
            {"opening": OPENING, "now": timezone.now()},
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE credits_balance; ANALYZE credits_ledgerentry;")


# --- Counting the writes and the baseline ------------------------------------------

_COUNTERS = """
SELECT COALESCE(parent.relname, s.relname), SUM(s.n_tup_ins), SUM(s.n_tup_upd), SUM(s.n_tup_del)
FROM pg_stat_user_tables s
LEFT JOIN pg_inherits i ON i.inhrelid = s.relid
LEFT JOIN pg_class parent ON parent.oid = i.inhparent
GROUP BY 1
"""


def _counters() -> dict[str, tuple[int, int, int]]:
    """Rows inserted, updated, deleted per table so far (this backend's pending counts flushed first)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
    time.sleep(0.05)  # the backend flushes its counters when it goes idle
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(_COUNTERS)
        return {name: (int(i), int(u), int(d)) for name, i, u, d in cursor.fetchall()}


def _delta(before: dict, after: dict) -> dict[str, tuple[int, int, int]]:
    out = {}
    for table, counts in after.items():
        prev = before.get(table, (0, 0, 0))
        diff = tuple(a - b for a, b in zip(counts, prev, strict=True))
        if any(diff):
            out[table] = diff
    return out


# Per table: the columns a copied row changes so it breaks no unique key and is never
# read as real (run 0, a reference of its own, a price id no row has; `{k}` tells one
# baseline from the next), and the column an update rewrites.
_COPY_OVERRIDES: dict[str, dict[str, str]] = {
    "usage_ratedusage": {"run_id": "0"},
    "usage_usagehourly": {"price_id": "-(id * 100 + {k})"},
    "usage_usagedaily": {"price_id": "-(id * 100 + {k})"},
    # Below the copied daily rows' own ids (their copies add day totals of their own).
    "usage_usagedaytotal": {"price_id": "-(id * 100 + {k}) - 1000000000000000"},
    "usage_resourcemonthtotal": {"month": "month + {k} + 1"},
    # Not a month's first day, so never a real month (the copied daily rows add to the real ones).
    "usage_usageorgmonth": {"month": "month + {k} + 1"},
    "credits_ledgerentry": {"reference": "'baseline:{k}:' || id"},
    "credits_settledrun": {"run_id": "-(run_id * 100 + {k})"},
    "credits_balance": {"currency": "'Z' || lpad(({k} + 1)::text, 2, '0')"},
}
_UPDATED_COLUMN = {
    "credits_balance": "amount", "credits_promogrant": "remaining", "usage_usagehourly": "amount",
    "usage_usagedaily": "amount", "usage_usagedaytotal": "amount", "usage_resourcemonthtotal": "amount",
    "usage_usageorgmonth": "amount", "usage_meteringchunk": "watermark_minute",
    "usage_meteringrun": "rolled_up_at",
}
_PRIMARY_KEY = {"credits_settledrun": "run_id"}
_baselines = 0


def _columns(cursor, table: str) -> list[str]:
    cursor.execute(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0 "
        "AND NOT a.attisdropped ORDER BY a.attnum", [table])
    return [r[0] for r in cursor.fetchall()]


def _statements(cursor, table: str, inserted: int, updated: int, deleted: int) -> list[tuple[str, list]]:
    """Names come from PostgreSQL's catalogue (the counted tables and their columns), quoted."""
    global _baselines
    _baselines += 1
    k = _baselines
    q = connection.ops.quote_name
    pk = _PRIMARY_KEY.get(table, "id")
    overrides = {c: e.format(k=k) for c, e in _COPY_OVERRIDES.get(table, {}).items()}
    cols = [c for c in _columns(cursor, table) if not (c == "id" and pk == "id")]
    t, key = q(table), q(pk)
    latest = f"SELECT {key} FROM {t} ORDER BY {key} DESC LIMIT %s"  # noqa: S608 - catalogue names
    out: list[tuple[str, list]] = []
    if inserted:
        values = ", ".join(overrides.get(c, q(c)) for c in cols)
        out.append((f"INSERT INTO {t} ({', '.join(q(c) for c in cols)}) SELECT {values} "  # noqa: S608 - catalogue names
                    f"FROM {t} ORDER BY {key} DESC LIMIT %s", [inserted]))
    if updated:
        col = q(_UPDATED_COLUMN.get(table) or next(c for c in cols if c != pk and c not in overrides))
        out.append((f"UPDATE {t} SET {col} = {col} WHERE {key} IN ({latest})", [updated]))  # noqa: S608 - catalogue names
    if deleted:
        out.append((f"DELETE FROM {t} WHERE {key} IN ({latest})", [deleted]))  # noqa: S608 - catalogue names
    return out


def _baseline(writes: dict[str, tuple[int, int, int]]) -> float:
    """As many rows inserted, updated and deleted per table as the minute wrote, by bare
    SQL, one committed transaction per table."""
    total = 0.0
    for table, (inserted, updated, deleted) in sorted(writes.items()):
        with connection.cursor() as cursor:
            statements = _statements(cursor, table, inserted, updated, deleted)
            started = time.perf_counter()
            with transaction.atomic():
                for sql, params in statements:
                    cursor.execute(sql, params)
            total += time.perf_counter() - started
    return total
