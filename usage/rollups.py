"""Hourly and daily series from rated usage, added once per metering run.

A run is rolled up in one transaction that locks it (`SKIP LOCKED`: two rollup tasks
share the work), adds its rows' sums to `UsageHourly` and `UsageDaily` with upserts, and
stamps `rolled_up_at`. A crash rolls back all three; a rerun picks the run up again.
Rolling up by run rather than by id range means a run that commits late (its ids below
ones already rolled up) is never skipped.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from usage.models import MeteringRun

RUNS_PER_BATCH = 200  # ~16 chunks a minute: one batch rolls up a quarter of an hour of runs

_ROLLUP = """
WITH agg AS (
    SELECT organization_id, resource_id, product_id, state, COALESCE(price_id, 0) AS price_id, currency,
           start_minute / 60 AS h, SUM(minutes) AS minutes, SUM(amount) AS amount
    FROM usage_ratedusage WHERE run_id = ANY(%(runs)s)
    GROUP BY 1, 2, 3, 4, 5, 6, 7
), hourly AS (
    INSERT INTO usage_usagehourly (organization_id, resource_id, product_id, state, price_id, currency, hour,
                                   minutes, amount)
    SELECT organization_id, resource_id, product_id, state, price_id, currency, to_timestamp(h * 3600),
           minutes, amount
    FROM agg
    ON CONFLICT (resource_id, product_id, state, price_id, hour) DO UPDATE
    SET minutes = usage_usagehourly.minutes + EXCLUDED.minutes, amount = usage_usagehourly.amount + EXCLUDED.amount
    RETURNING 1
), daily AS (
    INSERT INTO usage_usagedaily (organization_id, resource_id, product_id, state, price_id, currency, day,
                                  minutes, amount)
    SELECT organization_id, resource_id, product_id, state, price_id, currency,
           (to_timestamp(h * 3600) AT TIME ZONE 'UTC')::date, SUM(minutes), SUM(amount)
    FROM agg GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (resource_id, product_id, state, price_id, day) DO UPDATE
    SET minutes = usage_usagedaily.minutes + EXCLUDED.minutes, amount = usage_usagedaily.amount + EXCLUDED.amount
    RETURNING 1
)
SELECT (SELECT COUNT(*) FROM hourly), (SELECT COUNT(*) FROM daily)
"""


def rollup_pending(*, batches: int | None = None) -> int:
    """Roll up every committed run not yet rolled up; returns how many runs."""
    done = 0
    while batches is None or batches > 0:
        n = rollup_batch()
        done += n
        if n == 0:
            break
        if batches is not None:
            batches -= 1
    return done


@transaction.atomic
def rollup_batch(limit: int = RUNS_PER_BATCH) -> int:
    runs = list(
        MeteringRun.objects.select_for_update(skip_locked=True)
        .filter(rolled_up_at__isnull=True).order_by("id").values_list("id", flat=True)[:limit]
    )
    if not runs:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_ROLLUP, {"runs": runs})
    MeteringRun.objects.filter(id__in=runs).update(rolled_up_at=timezone.now())
    return len(runs)
