"""Per-minute metering: every minute of every resource rated once, at the price in force.

How a pass works
----------------
Organisations fall into `USAGE_METERING_CHUNKS` chunks (`organization_id % chunks`).
Each chunk has a watermark W: every minute below it is rated, none at or above it. One
*slice* of a chunk is one transaction:

1. lock the chunk row (`SELECT … FOR UPDATE SKIP LOCKED`: a second pass, thread or worker
   skips a chunk someone is rating instead of waiting or doubling it);
2. corrections: resources with a change point recorded below W (a late event, a
   state change back-dated by a service) get a `reversal` row for each rated row from
   that point on and the minutes are rated again as `correction` rows;
3. rate `[W, hi)` where `hi = min(until, next clock hour)`: state intervals (and add-on
   attachments) × effective rates from `pricing_effective_rate`, split at every state,
   product, price and hour boundary, in one `INSERT … SELECT` (PostgreSQL; exact NUMERIC);
4. move W to `hi` and commit. The `USAGE_AFTER_METERING` hooks get the run id on commit.

A crash anywhere rolls back the whole slice, rows and watermark together; the next pass
starts from the same W. After an outage the pass walks forward one clock hour per slice
until it reaches `now − grace`. The amounts telescope (see `RatedUsage`), so a six-hour
catch-up and 360 one-minute passes produce the same Decimal totals.

Hourly prices with a `monthly_cap` are clamped against `ResourceMonthTotal`, kept in the
same statement. Monthly prices accrue per minute as `rate × minutes / minutes in month`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import F, Min, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from core.money import round_stored
from pricing.sql import EFFECTIVE_RATE_VIEW
from usage.models import (
    MeteringChunk,
    MeteringRun,
    RatedKind,
    RatedUsage,
    Recheck,
    StateInterval,
    to_minute,
)

logger = logging.getLogger(__name__)


def chunk_count() -> int:
    return int(settings.USAGE_METERING_CHUNKS)


def until_minute(now: datetime | None = None) -> int:
    """The first minute not yet rateable: metering stops `USAGE_METERING_GRACE` before now."""
    return to_minute((now or timezone.now()) - settings.USAGE_METERING_GRACE)


def ensure_chunks() -> None:
    n = chunk_count()
    existing = dict(MeteringChunk.objects.values_list("number", "watermark_minute"))
    extra = {k: w for k, w in existing.items() if k >= n}
    if extra:
        marks = {w for w in existing.values()}
        if len(marks) > 1:
            raise ImproperlyConfigured(
                "USAGE_METERING_CHUNKS changed while chunks are at different watermarks; "
                "set it back, run `manage.py meter` until they agree, then change it."
            )
        MeteringChunk.objects.filter(number__gte=n).delete()
    missing = [MeteringChunk(number=k, watermark_minute=next(iter(existing.values()), None) if extra else None)
               for k in range(n) if k not in existing]
    if missing:
        MeteringChunk.objects.bulk_create(missing, ignore_conflicts=True)


# --- SQL --------------------------------------------------------------------------

# Epoch minutes of a price's validity bounds, for the pieces' integer arithmetic.
_MINUTE_SQL = {
    "vf": "(FLOOR(EXTRACT(EPOCH FROM valid_from) / 60))::bigint",
    "vt": "(FLOOR(EXTRACT(EPOCH FROM valid_to) / 60))::bigint",
}


# The priced pieces of a window: interval (and add-on) × rate, clipped to the window and
# to each other. Every column is an integer or a stored Decimal: portable SQL.
_PIECES = """
seg AS (
    SELECT i.resource_id, i.organization_id, i.eff_product_id AS product_id, i.eff_state AS state,
           p.billing_model AS parent_model,
           GREATEST(i.start_minute, {lo}) AS s,
           LEAST(COALESCE(i.end_minute, {hi}), {hi}) AS e
    FROM usage_stateinterval i
    {join_i}
    JOIN pricing_product p ON p.id = i.eff_product_id
    WHERE {filter_i} AND i.start_minute < {hi} AND (i.end_minute IS NULL OR i.end_minute > {lo})
      AND i.eff_state <> 'deleted'
    UNION ALL
    SELECT i.resource_id, i.organization_id, a.product_id, i.eff_state, p.billing_model,
           GREATEST(i.start_minute, a.start_minute, {lo}),
           LEAST(COALESCE(i.end_minute, {hi}), COALESCE(a.end_minute, {hi}), {hi})
    FROM usage_addonattachment a
    {join_a}
    JOIN usage_stateinterval i ON i.resource_id = a.resource_id
         AND i.start_minute < COALESCE(a.end_minute, {hi})
         AND (i.end_minute IS NULL OR i.end_minute > a.start_minute)
    JOIN pricing_product p ON p.id = i.eff_product_id
    WHERE {filter_a} AND a.start_minute < {hi} AND (a.end_minute IS NULL OR a.end_minute > {lo})
      AND i.start_minute < {hi} AND (i.end_minute IS NULL OR i.end_minute > {lo})
      AND i.eff_state <> 'deleted'
),
rates AS (
    SELECT organization_id, product_id, state, unit, currency, rate, monthly_cap, min_billable_minutes, price_id,
           contract_id, {vf} AS vf, {vt} AS vt
    FROM {view}
    WHERE organization_id %% %(chunks)s = %(chunk)s AND unit IN ('hour', 'month')
),
piece AS (
    SELECT seg.resource_id, seg.organization_id, seg.product_id, seg.state, r.unit, r.currency, r.rate,
           r.monthly_cap, r.price_id, r.contract_id,
           GREATEST(seg.s, r.vf) AS s,
           LEAST(seg.e, COALESCE(r.vt, seg.e)) AS e
    FROM seg
    JOIN rates r ON r.organization_id = seg.organization_id AND r.product_id = seg.product_id
         AND r.state = seg.state
         AND r.unit = CASE WHEN seg.parent_model = 'monthly' THEN 'month' ELSE 'hour' END
         AND r.vf < seg.e AND (r.vt IS NULL OR r.vt > seg.s)
    WHERE seg.s < seg.e
)
"""

# PostgreSQL: split at clock hours, price with exact NUMERIC, clamp capped hourly prices
# against the month-to-date total, insert, and keep that total, in one statement.
_RATE = """
WITH {win}
{pieces},
hpiece AS (
    SELECT piece.*, GREATEST(piece.s, h * 60) AS hs, LEAST(piece.e, h * 60 + 60) AS he,
           CASE WHEN piece.unit = 'month' OR piece.monthly_cap IS NOT NULL
                THEN (date_trunc('month', to_timestamp(h * 3600) AT TIME ZONE 'UTC'))::date END AS month
    FROM piece CROSS JOIN LATERAL generate_series(piece.s / 60, (piece.e - 1) / 60) AS h
),
priced AS (
    SELECT hp.*,
           CASE WHEN hp.unit = 'hour'
                THEN ROUND(hp.rate * hp.he / 60, 12) - ROUND(hp.rate * hp.hs / 60, 12)
                ELSE ROUND(hp.rate * (hp.he - m.ms) / m.mim, 12) - ROUND(hp.rate * (hp.hs - m.ms) / m.mim, 12)
           END AS raw
    FROM hpiece hp
    LEFT JOIN LATERAL (
        SELECT (EXTRACT(EPOCH FROM hp.month::timestamp) / 60)::bigint AS ms,
               (EXTRACT(EPOCH FROM (hp.month + interval '1 month') - hp.month::timestamp) / 60)::bigint AS mim
        WHERE hp.unit = 'month'
    ) m ON TRUE
),
final AS (
    SELECT resource_id, organization_id, product_id, state, unit, currency, rate, price_id, contract_id,
           hs, he, month, FALSE AS capped, raw AS amount
    FROM priced WHERE monthly_cap IS NULL OR unit <> 'hour'
    UNION ALL
    SELECT c.resource_id, c.organization_id, c.product_id, c.state, c.unit, c.currency, c.rate, c.price_id,
           c.contract_id, c.hs, c.he, c.month, TRUE,
           LEAST(c.raw, GREATEST(c.monthly_cap - COALESCE(t.amount, 0) - COALESCE(c.before, 0), 0))
    FROM (
        SELECT priced.*, SUM(raw) OVER (PARTITION BY resource_id, product_id, month ORDER BY hs
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
        FROM priced WHERE monthly_cap IS NOT NULL AND unit = 'hour'
    ) c
    LEFT JOIN usage_resourcemonthtotal t
           ON t.resource_id = c.resource_id AND t.product_id = c.product_id AND t.month = c.month
),
ins AS (
    INSERT INTO usage_ratedusage
        (run_id, organization_id, resource_id, product_id, state, kind, start_minute, end_minute, minutes,
         unit, unit_rate, amount, currency, price_id, contract_id)
    SELECT %(run)s, organization_id, resource_id, product_id, state, %(kind)s, hs, he, he - hs,
           unit, rate, amount, currency, price_id, contract_id
    FROM final
    RETURNING 1
),
acc AS (
    INSERT INTO usage_resourcemonthtotal (resource_id, product_id, month, amount)
    SELECT resource_id, product_id, month, SUM(amount) FROM final WHERE capped GROUP BY 1, 2, 3
    ON CONFLICT (resource_id, product_id, month)
    DO UPDATE SET amount = usage_resourcemonthtotal.amount + EXCLUDED.amount
    RETURNING 1
)
SELECT (SELECT COUNT(*) FROM ins), (SELECT COUNT(*) FROM acc)
"""

# Minimum billable time: a run — consecutive intervals in one state, whatever the
# product (a resize does not end a run) — that ended in the window after fewer minutes
# than its last price's minimum gets one `minimum` row for the missing minutes, at the
# rate in force in its last minute. The row sits at [end, end + 1) so a window holds it
# exactly when it holds the run's end, and a correction reverses it. Only intervals
# shorter than the minimum are candidates; for those the run's start is the end of the
# last interval in another state (or the resource's first start).
_RUN_START = """COALESCE(
    (SELECT MAX(b.end_minute) FROM usage_stateinterval b
     WHERE b.resource_id = i.resource_id AND b.end_minute <= i.start_minute AND b.end_minute > b.start_minute
       AND b.eff_state <> i.eff_state),
    (SELECT MIN(f.start_minute) FROM usage_stateinterval f WHERE f.resource_id = i.resource_id))"""
_MINIMUMS = """
WITH {win}
{pieces}
SELECT i.organization_id, i.resource_id, i.eff_product_id, i.eff_state, i.end_minute,
       r.min_billable_minutes - (i.end_minute - %(run_start)s) AS missing, r.rate, r.currency, r.price_id,
       r.contract_id
FROM usage_stateinterval i
{join_i}
JOIN pricing_product p ON p.id = i.eff_product_id
JOIN rates r ON r.organization_id = i.organization_id AND r.product_id = i.eff_product_id AND r.state = i.eff_state
     AND r.unit = 'hour' AND r.vf <= i.end_minute - 1 AND (r.vt IS NULL OR r.vt > i.end_minute - 1)
WHERE {filter_i} AND i.end_minute >= {lo} AND i.end_minute < {hi} AND i.end_minute > i.start_minute
  AND p.billing_model = 'hourly' AND r.min_billable_minutes > i.end_minute - i.start_minute
  AND NOT EXISTS (SELECT 1 FROM usage_stateinterval n
                  WHERE n.resource_id = i.resource_id AND n.start_minute = i.end_minute AND n.eff_state = i.eff_state
                    AND (n.end_minute IS NULL OR n.end_minute > n.start_minute))
  AND r.min_billable_minutes > i.end_minute - %(run_start)s
""".replace("%(run_start)s", _RUN_START)

_REVERSE = """
WITH d(resource_id, from_minute) AS (SELECT * FROM unnest(%(res)s::bigint[], %(from)s::bigint[])),
rev AS (
    SELECT r.* FROM usage_ratedusage r JOIN d ON d.resource_id = r.resource_id
    WHERE r.end_minute > d.from_minute AND r.kind IN ('charge', 'correction', 'minimum')
      AND NOT EXISTS (SELECT 1 FROM usage_ratedusage x WHERE x.corrects_id = r.id)
),
ins AS (
    INSERT INTO usage_ratedusage
        (run_id, organization_id, resource_id, product_id, state, kind, start_minute, end_minute, minutes,
         unit, unit_rate, amount, currency, price_id, contract_id, corrects_id)
    SELECT %(run)s, organization_id, resource_id, product_id, state, 'reversal', start_minute, end_minute,
           -minutes, unit, unit_rate, -amount, currency, price_id, contract_id, id
    FROM rev
    RETURNING resource_id, product_id, start_minute, amount
),
acc AS (
    UPDATE usage_resourcemonthtotal t SET amount = t.amount + a.amount
    FROM (SELECT resource_id, product_id,
                 (date_trunc('month', to_timestamp(start_minute * 60) AT TIME ZONE 'UTC'))::date AS month,
                 SUM(amount) AS amount
          FROM ins GROUP BY 1, 2, 3) a
    WHERE t.resource_id = a.resource_id AND t.product_id = a.product_id AND t.month = a.month
    RETURNING 1
)
SELECT resource_id, MIN(start_minute), COUNT(*) FROM ins GROUP BY resource_id
"""


def _sql_params(chunk: int, run_id: int, kind: str) -> dict:
    return {"chunks": chunk_count(), "chunk": chunk, "run": run_id, "kind": kind}


# The chunk's organisations by id, so the (organization, end_minute) indexes serve the
# lookup instead of a scan of every interval for `organization_id % chunks`.
_IN_CHUNK = "{col} IN (SELECT id FROM accounts_organization WHERE id %% %(chunks)s = %(chunk)s)"


def _chunk_window_sql(lo: int, hi: int) -> dict[str, str]:
    return {
        **_MINUTE_SQL, "view": EFFECTIVE_RATE_VIEW, "lo": str(int(lo)), "hi": str(int(hi)), "join_i": "", "join_a": "",
        "filter_i": _IN_CHUNK.format(col="i.organization_id"),
        "filter_a": _IN_CHUNK.format(col="a.organization_id"),
    }


def _resource_windows_sql() -> dict[str, str]:
    return {
        **_MINUTE_SQL, "view": EFFECTIVE_RATE_VIEW, "lo": "w.lo", "hi": "w.hi",
        "join_i": "JOIN win w ON w.resource_id = i.resource_id",
        "join_a": "JOIN win w ON w.resource_id = a.resource_id",
        "filter_i": "TRUE", "filter_a": "TRUE",
    }


def _win_cte(windows: list[tuple[int, int, int]] | None, params: dict) -> str:
    if windows is None:
        return ""
    params.update(w_res=[w[0] for w in windows], w_lo=[w[1] for w in windows], w_hi=[w[2] for w in windows])
    return ("win(resource_id, lo, hi) AS (SELECT * FROM unnest(%(w_res)s::bigint[], %(w_lo)s::bigint[], "
            "%(w_hi)s::bigint[])),")


def _build(template: str, fmt: dict[str, str], win: str) -> str:
    pieces = _PIECES.format(**fmt)
    return template.format(win=win, pieces=pieces.strip(), **fmt)


def _rate(*, run_id: int, chunk: int, kind: str, lo: int = 0, hi: int = 0,
          windows: list[tuple[int, int, int]] | None = None) -> int:
    """Rate a chunk's window `[lo, hi)` or, with `windows`, each `(resource, lo, hi)`.
    Returns the number of rated rows inserted."""
    if windows is not None and not windows:
        return 0
    params = _sql_params(chunk, run_id, kind)
    fmt = _resource_windows_sql() if windows is not None else _chunk_window_sql(lo, hi)
    win = _win_cte(windows, params)
    with connection.cursor() as cursor:
        cursor.execute(_build(_RATE, fmt, win), params)
        rows = cursor.fetchone()[0]
        cursor.execute(_build(_MINIMUMS, fmt, win), params)
        minimums = cursor.fetchall()
    return rows + _insert_minimums(minimums, run_id=run_id)


def _insert_minimums(found: list[tuple], *, run_id: int) -> int:
    """Few rows (runs shorter than a few minutes): priced here in Decimals (rates are NUMERIC)."""
    RatedUsage.objects.bulk_create([
        RatedUsage(
            run_id=run_id, organization_id=org, resource_id=resource, product_id=product, state=state,
            kind=RatedKind.MINIMUM, start_minute=end, end_minute=end + 1, minutes=missing, unit="hour",
            unit_rate=rate, amount=round_stored(rate * missing / 60), currency=currency,
            price_id=price_id, contract_id=contract_id,
        )
        for org, resource, product, state, end, missing, rate, currency, price_id, contract_id in found
    ])
    return len(found)


def _reverse(*, run_id: int, dirty: list[tuple[int, int]]) -> dict[int, tuple[int, int]]:
    """Reverse every live rated row of the dirty resources from their recheck minute on.
    Returns {resource_id: (earliest reversed start, rows reversed)}."""
    if not dirty:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_REVERSE, {"run": run_id, "res": [d[0] for d in dirty], "from": [d[1] for d in dirty]})
        return {r: (start, n) for r, start, n in cursor.fetchall()}


# --- Passes -----------------------------------------------------------------------

@dataclass
class SliceResult:
    chunk: int
    run_id: int | None
    from_minute: int
    until_minute: int
    rows: int = 0
    corrections: int = 0


@dataclass
class PassResult:
    until_minute: int
    slices: list[SliceResult] = field(default_factory=list)
    skipped_chunks: list[int] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.slices)

    @property
    def corrections(self) -> int:
        return sum(s.corrections for s in self.slices)


def _in_chunk(qs: QuerySet, chunk: int) -> QuerySet:
    return qs.alias(chunk_number=F("organization_id") % chunk_count()).filter(chunk_number=chunk)


def _initial_watermark(chunk: int, until: int) -> int:
    first = _in_chunk(StateInterval.objects.all(), chunk).aggregate(m=Min("start_minute"))["m"]
    return until if first is None else min(first, until)


def meter_chunk_slice(*, chunk: int, until: int) -> SliceResult | None:
    """One transaction: corrections below the watermark, then at most one clock hour
    `[W, min(until, next hour))`, then the watermark. None when another pass holds the
    chunk."""
    with transaction.atomic():
        row = MeteringChunk.objects.select_for_update(skip_locked=True).filter(number=chunk).first()
        if row is None:
            return None
        lo = row.watermark_minute
        if lo is None:
            lo = _initial_watermark(chunk, until)
        hi = min(until, (lo // 60 + 1) * 60) if lo < until else lo
        run = MeteringRun.objects.create(chunk=chunk, from_minute=lo, until_minute=hi)
        result = SliceResult(chunk=chunk, run_id=run.pk, from_minute=lo, until_minute=hi)
        result.corrections = _correct(run_id=run.pk, chunk=chunk, watermark=lo)
        if hi > lo:
            result.rows = _rate(run_id=run.pk, chunk=chunk, kind=RatedKind.CHARGE, lo=lo, hi=hi)
        row.watermark_minute = hi
        row.save(update_fields=["watermark_minute", "updated_at"])
        if result.rows or result.corrections:
            run.rows, run.corrections = result.rows, result.corrections
            run.save(update_fields=["rows", "corrections"])
            transaction.on_commit(lambda: after_metering(run.pk), robust=True)
        else:
            run.delete()
            result.run_id = None
        return result


def _correct(*, run_id: int, chunk: int, watermark: int) -> int:
    """Consume the chunk's rechecks; re-rate resources changed below the watermark."""
    rechecks = _in_chunk(Recheck.objects.all(), chunk)
    max_id = rechecks.order_by("-id").values_list("id", flat=True).first()
    if max_id is None:
        return 0
    dirty: dict[int, int] = {}
    for resource_id, minute in rechecks.filter(id__lte=max_id, from_minute__lt=watermark).values_list(
        "resource_id", "from_minute"
    ):
        dirty[resource_id] = min(minute, dirty.get(resource_id, minute))
    rows = 0
    if dirty:
        reversed_ = _reverse(run_id=run_id, dirty=sorted(dirty.items()))
        windows = []
        for resource_id, minute in sorted(dirty.items()):
            start = min(minute, reversed_.get(resource_id, (minute, 0))[0])
            windows.append((resource_id, start, watermark))
        rows = sum(n for _, n in reversed_.values())
        rows += _rate(run_id=run_id, chunk=chunk, kind=RatedKind.CORRECTION, windows=windows)
    rechecks.filter(id__lte=max_id).delete()
    return rows


def meter_chunk(*, chunk: int, until: int, max_slices: int | None = None) -> list[SliceResult]:
    """Slices until the chunk's watermark reaches `until` (or `max_slices` ran, or
    another pass holds the chunk)."""
    done: list[SliceResult] = []
    while max_slices is None or len(done) < max_slices:
        result = meter_chunk_slice(chunk=chunk, until=until)
        if result is None:
            break
        done.append(result)
        if result.until_minute >= until:
            break
    return done


def meter_pass(*, until: datetime | None = None, chunks: list[int] | None = None) -> PassResult:
    """Meter every chunk up to `until` (default `now − grace`), one after another."""
    ensure_chunks()
    until_m = to_minute(until) if until is not None else until_minute()
    result = PassResult(until_minute=until_m)
    for chunk in chunks if chunks is not None else range(chunk_count()):
        slices = meter_chunk(chunk=chunk, until=until_m)
        if not slices:
            result.skipped_chunks.append(chunk)
        result.slices.extend(slices)
    return result


def after_metering(run_id: int) -> None:
    for path in settings.USAGE_AFTER_METERING:
        import_string(path)(run_id)
