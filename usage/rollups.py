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
WITH src AS (
    -- A reversal says which row it negates (`corrects_id`), not what kind that row was: a
    -- probe of the primary key (id, start_minute; a reversal keeps its row's start) for
    -- the few reversals only, so minimum billable time is told apart net of corrections.
    SELECT r.*, CASE WHEN r.kind = 'minimum' THEN TRUE
                     WHEN r.kind <> 'reversal' THEN FALSE
                     ELSE EXISTS (SELECT 1 FROM usage_ratedusage o WHERE o.id = r.corrects_id
                                  AND o.start_minute = r.start_minute AND o.kind = 'minimum') END AS is_minimum
    FROM usage_ratedusage r WHERE r.run_id = ANY(%(runs)s)
), agg AS (
    SELECT organization_id, resource_id, product_id, state, COALESCE(price_id, 0) AS price_id, currency,
           start_minute / 60 AS h, SUM(minutes) AS minutes, SUM(amount) AS amount,
           COALESCE(SUM(minutes) FILTER (WHERE is_minimum), 0) AS minimum_minutes,
           COALESCE(SUM(amount) FILTER (WHERE is_minimum), 0) AS minimum_amount,
           -- An hourly span's price before a monthly cap's clamp is the rating's own
           -- telescoping `raw` (usage.rating_sql), so an unclamped span saves exactly 0.
           COALESCE(SUM(CASE WHEN kind = 'reversal' THEN -1 ELSE 1 END
                        * (ROUND(unit_rate * end_minute / 60, 12) - ROUND(unit_rate * start_minute / 60, 12))
                        - amount) FILTER (WHERE unit = 'hour' AND kind <> 'import' AND NOT is_minimum), 0)
               AS cap_saved
    FROM src
    GROUP BY 1, 2, 3, 4, 5, 6, 7
), hourly AS (
    INSERT INTO usage_usagehourly (organization_id, resource_id, product_id, state, price_id, currency, hour,
                                   minutes, amount, minimum_minutes, minimum_amount, cap_saved)
    SELECT organization_id, resource_id, product_id, state, price_id, currency, to_timestamp(h * 3600),
           minutes, amount, minimum_minutes, minimum_amount, cap_saved
    FROM agg
    ON CONFLICT (resource_id, product_id, state, price_id, hour) DO UPDATE
    SET minutes = usage_usagehourly.minutes + EXCLUDED.minutes, amount = usage_usagehourly.amount + EXCLUDED.amount,
        minimum_minutes = usage_usagehourly.minimum_minutes + EXCLUDED.minimum_minutes,
        minimum_amount = usage_usagehourly.minimum_amount + EXCLUDED.minimum_amount,
        cap_saved = usage_usagehourly.cap_saved + EXCLUDED.cap_saved
    RETURNING 1
), daily AS (
    INSERT INTO usage_usagedaily (organization_id, resource_id, product_id, state, price_id, currency, day,
                                  minutes, amount, minimum_minutes, minimum_amount, cap_saved)
    SELECT organization_id, resource_id, product_id, state, price_id, currency,
           (to_timestamp(h * 3600) AT TIME ZONE 'UTC')::date, SUM(minutes), SUM(amount),
           SUM(minimum_minutes), SUM(minimum_amount), SUM(cap_saved)
    FROM agg GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (resource_id, product_id, state, price_id, day) DO UPDATE
    SET minutes = usage_usagedaily.minutes + EXCLUDED.minutes, amount = usage_usagedaily.amount + EXCLUDED.amount,
        minimum_minutes = usage_usagedaily.minimum_minutes + EXCLUDED.minimum_minutes,
        minimum_amount = usage_usagedaily.minimum_amount + EXCLUDED.minimum_amount,
        cap_saved = usage_usagedaily.cap_saved + EXCLUDED.cap_saved
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
