"""Metering: every minute of every resource charged once at the price in force, stored as
rated spans when its clock hour closes.

How a pass works
----------------
Organisations fall into `USAGE_METERING_CHUNKS` chunks (`organization_id % chunks`).
Each chunk has a watermark W (every minute below it is charged to the balances, none at
or above it) and a rated mark R (every minute below it is stored as `RatedUsage` spans);
R ≤ W ≤ E, the end of R's clock hour. One *slice* of a chunk is one transaction:

1. lock the chunk row (`SELECT … FOR UPDATE SKIP LOCKED`: a second pass, thread or worker
   skips a chunk someone is metering instead of waiting or doubling it);
2. corrections: resources with a change point recorded below R (a late event, a state
   change back-dated by a service) get a `reversal` row for each stored span from that
   point on and the minutes are rated again as `correction` rows. A change point inside
   the open hour `[R, W)` is only consumed: that hour is stored as it is when it closes;
3. if `until` reaches E the hour closes: `[R, E)` is rated into spans — state intervals
   (and add-on attachments) × effective rates from `pricing_effective_rate`, split at
   every state, product, price and hour boundary, in one `INSERT … SELECT` (PostgreSQL;
   exact NUMERIC) — and R = W = E. Otherwise `[W, until)` is *accrued*: each
   organisation's burn rate (`AccrualRate`: read for the whole chunk at its first
   accrual of an hour once the hour before is closed, again for an organisation whose
   resources changed) × the minutes,
   one `UsageAccrual` row per organisation and currency, nothing per resource, and
   W = until;
4. move the marks and commit. The `USAGE_AFTER_METERING` hooks get the run id on commit
   (credits' sync charges an accrual run's accruals, and a closing run's spans minus the
   accruals it closes).

A crash anywhere rolls back the whole slice, rows and marks together; the next pass
starts from the same marks. After an outage the pass walks forward one clock hour per
slice, storing each hour directly, until it reaches `now − grace`. The amounts telescope
(see `RatedUsage`), so a six-hour catch-up and 360 one-minute passes store the same
spans, and an hour's accruals add up to its spans unless something changed inside it.

Hourly prices with a `monthly_cap` are clamped against `ResourceMonthTotal`, kept in the
same statement as the spans. Monthly prices accrue per minute as `rate × minutes /
minutes in month`.

This module holds the chunks, slices and passes and runs the statements; the SQL itself
(templates and the builders that fill in a window) is `usage.rating_sql`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import F, Min, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from core import prepared
from core.money import round_stored
from usage import rating_sql
from usage.models import (
    AccrualRate,
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


# Running resources per chunk the sizing rule aims at. Each chunk costs a fixed ~10-15 ms a
# minute on the development machine (its lock, run row and two commits: the slice and
# its credit sync), and closes its hour in one statement: fewer chunks for a small fleet
# keep the fixed cost in proportion to the work, more for a large one keep one chunk's
# hour close (staggered, one chunk at a time) a small part of a minute.
RESOURCES_PER_CHUNK = 8_000


def chunks_for_fleet(resources: int) -> int:
    """The `USAGE_METERING_CHUNKS` to run a fleet of `resources` running resources with:
    one per `RESOURCES_PER_CHUNK`, rounded (1 at 10,000, 12 at 100,000, 125 at 1M). Changing the
    setting is refused except at an hour boundary (`ensure_chunks`)."""
    return max(1, round(resources / RESOURCES_PER_CHUNK))


def until_minute(now: datetime | None = None) -> int:
    """The first minute not yet rateable: metering stops `USAGE_METERING_GRACE` before now."""
    return to_minute((now or timezone.now()) - settings.USAGE_METERING_GRACE)


def ensure_chunks() -> None:
    """One row per chunk. When `USAGE_METERING_CHUNKS` changes, organisations move
    between chunks: only allowed while every chunk is at the same marks with no open
    hour (watermark = rated mark, an hour boundary), which the new chunks then take."""
    n = chunk_count()
    existing = {number: (w, r) for number, w, r in
                MeteringChunk.objects.values_list("number", "watermark_minute", "rated_minute")}
    extra = [k for k in existing if k >= n]
    missing = [k for k in range(n) if k not in existing]
    if not extra and not missing:
        return
    marks = set(existing.values())
    if len(marks) > 1 or any(w != r for w, r in marks):
        raise ImproperlyConfigured(
            "USAGE_METERING_CHUNKS changed while chunks are at different watermarks or inside an open hour; "
            "set it back, run `manage.py meter` to an hour boundary until they agree, then change it."
        )
    watermark, rated = next(iter(marks), (None, None))
    # Organisations change chunks: every chunk reads its burn rates again.
    AccrualRate.objects.all().delete()
    MeteringChunk.objects.update(rates_minute=None)
    if extra:
        MeteringChunk.objects.filter(number__gte=n).delete()
    if missing:
        MeteringChunk.objects.bulk_create(
            [MeteringChunk(number=k, watermark_minute=watermark, rated_minute=rated) for k in missing],
            ignore_conflicts=True,
        )


# --- Rating a window: runs the statements of `usage.rating_sql` ----------------------

def _chunk_orgs(chunk: int) -> list[int]:
    """The chunk's organisation ids (the rating statements take them as one array)."""
    from accounts.models import Organization

    return list(_in_chunk_id(Organization.objects.all(), chunk).order_by("id").values_list("id", flat=True))


def _sql_params(chunk: int, run_id: int, kind: str, orgs: list[int] | None = None) -> dict:
    return {"chunks": chunk_count(), "chunk": chunk, "run": run_id, "kind": kind,
            "orgs": _chunk_orgs(chunk) if orgs is None else orgs}


# The rating statements run prepared (core.prepared: planned once per session, ~18 ms
# saved per statement) only for chunks of up to this many organisations. A generic plan
# cannot see how many ids the array holds and plans for about ten (PostgreSQL's guess
# for a parameter array): right for a small chunk (the demo's, a catch-up's hour after
# hour), nested loops over a big one, where it doubled the hour close (benchmark
# metering, 100k resources in 12 chunks of ~830 organisations: 1.7 -> 3.4 s) and
# planning is a sliver of the statement's time.
PREPARED_MAX_ORGS = 32


def _unprepared(cursor: Any, sql: str, params: dict) -> None:
    cursor.execute(sql, params)


def _rate(*, run_id: int, chunk: int, kind: str, lo: int = 0, hi: int = 0,
          windows: list[tuple[int, int, int]] | None = None) -> int:
    """Rate a chunk's window `[lo, hi)` or, with `windows`, each `(resource, lo, hi)`.
    Returns the number of rated rows inserted."""
    if windows is not None and not windows:
        return 0
    params = _sql_params(chunk, run_id, kind)
    if windows is not None:
        fmt = rating_sql.resource_windows_sql()
    else:  # the window's bounds as parameters: one prepared statement for every hour
        fmt = rating_sql.chunk_window_sql_params()
        params.update(lo=int(lo), hi=int(hi))
    win = rating_sql.win_cte(windows, params)
    run = prepared.execute if len(params["orgs"]) <= PREPARED_MAX_ORGS else _unprepared
    with connection.cursor() as cursor:
        run(cursor, rating_sql.build(rating_sql.RATE, fmt, win), params)
        rows = cursor.fetchone()[0]
        run(cursor, rating_sql.build(rating_sql.MINIMUMS, fmt, win), params)
        minimums = cursor.fetchall()
    return rows + _insert_minimums(minimums, run_id=run_id)


def _read_rates(*, chunk: int, minute: int, orgs: list[int] | None = None) -> None:
    """(Re)read the burn rates at `minute` of the chunk's organisations (or of `orgs`)."""
    params = _sql_params(chunk, 0, RatedKind.CHARGE, orgs)
    if orgs is None:
        fmt = rating_sql.chunk_window_sql(minute, minute + 1)
        AccrualRate.objects.filter(chunk=chunk).delete()
    else:
        fmt = rating_sql.orgs_window_sql(minute, minute + 1)
        AccrualRate.objects.filter(organization_id__in=orgs).delete()
    with connection.cursor() as cursor:
        cursor.execute(rating_sql.build(rating_sql.RATES, fmt, ""), params)


def _accrue(*, run_id: int, chunk: int, lo: int, hi: int) -> int:
    """Charge the chunk's window `[lo, hi)` of the open hour per organisation from its
    burn rate: one `UsageAccrual` row per organisation and currency, nothing per resource."""
    with connection.cursor() as cursor:
        cursor.execute(rating_sql.ACCRUE, {"run": run_id, "chunk": chunk, "lo": lo, "hi": hi})
        return cursor.rowcount


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
        cursor.execute(rating_sql.REVERSE, {"run": run_id, "res": [d[0] for d in dirty], "from": [d[1] for d in dirty]})
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
    more: bool = False  # another slice has work: minutes to accrue or an hour to close


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


def _in_chunk_id(qs: QuerySet, chunk: int) -> QuerySet:
    return qs.alias(chunk_number=F("id") % chunk_count()).filter(chunk_number=chunk)


def _initial_watermark(chunk: int, until: int) -> int:
    first = _in_chunk(StateInterval.objects.all(), chunk).aggregate(m=Min("start_minute"))["m"]
    return until if first is None else min(first, until)


def _hour_end(minute: int) -> int:
    return (minute // 60 + 1) * 60


def close_offset(chunk: int) -> int:
    """Minutes after its clock hour ends that a chunk closes it, when staggered: chunk k of
    n at k·60/n, so the hour's spans are written a chunk at a time across the next hour
    instead of all in its first minute."""
    return chunk * 60 // chunk_count()


def meter_chunk_slice(*, chunk: int, until: int, stagger: bool = False) -> SliceResult | None:
    """One transaction: corrections below the rated mark, then one step, then the marks.
    None when another pass holds the chunk.

    With R the rated mark, E the end of R's clock hour and W the watermark (R ≤ W, and W
    is at most one clock hour past E): if `until` reaches E (plus the chunk's
    `close_offset` when `stagger`) the hour closes — `[R, E)` is stored as rated spans
    and the accruals inside it are closed by this run — R = E and W = max(W, E);
    otherwise `[W, until)`, cut at W's clock hour, is accrued per organisation and W
    moves there. Accrual windows never cross a clock hour, so a closing run closes
    exactly the accruals of its hour. A catch-up after an outage stores one clock hour per
    slice and accrues nothing."""
    with transaction.atomic():
        row = MeteringChunk.objects.select_for_update(skip_locked=True).filter(number=chunk).first()
        if row is None:
            return None
        lo = row.watermark_minute
        if lo is None:
            lo = _initial_watermark(chunk, until)
        rated = lo if row.rated_minute is None else row.rated_minute
        end = _hour_end(rated)
        closes = until >= end + (close_offset(chunk) if stagger else 0)
        lo_, hi = (rated, end) if closes else (lo, max(lo, min(until, _hour_end(lo))))
        run = MeteringRun.objects.create(chunk=chunk, from_minute=lo_, until_minute=hi, accrued=not closes)
        result = SliceResult(chunk=chunk, run_id=run.pk, from_minute=lo_, until_minute=hi)
        dirty_orgs: set[int] = set()
        result.corrections = _correct(run_id=run.pk, chunk=chunk, watermark=rated, dirty_orgs=dirty_orgs)
        accruals = 0
        if closes:
            result.rows = _rate(run_id=run.pk, chunk=chunk, kind=RatedKind.CHARGE, lo=rated, hi=end)
            row.rated_minute, row.watermark_minute = end, max(lo, end)
        else:
            if hi > lo:
                # The burn rates are read again at the first accrual of a clock hour once
                # the hour before it is closed: with staggered closes, a chunk accrues the
                # first minutes of an hour at the rates it had (an estimate, trued up when
                # the hour closes) and reads them right after its close, so the chunks
                # read theirs one at a time instead of all in the hour's first minute.
                if row.rates_minute is None or (row.rates_minute // 60 != lo // 60 and rated >= lo // 60 * 60):
                    _read_rates(chunk=chunk, minute=lo)
                    row.rates_minute = lo
                elif dirty_orgs:
                    _read_rates(chunk=chunk, minute=lo, orgs=sorted(dirty_orgs))
                accruals = _accrue(run_id=run.pk, chunk=chunk, lo=lo, hi=hi)
            row.watermark_minute, row.rated_minute = hi, rated
        row.save(update_fields=["watermark_minute", "rated_minute", "rates_minute", "updated_at"])
        result.more = row.watermark_minute < until or until >= _hour_end(row.rated_minute) + (
            close_offset(chunk) if stagger else 0)
        closes_accruals = closes and lo > rated
        if result.rows or result.corrections or accruals or closes_accruals:
            run.rows, run.corrections = result.rows, result.corrections
            # Nothing to roll up in a run that stored no spans.
            run.rolled_up_at = None if result.rows or result.corrections else timezone.now()
            run.save(update_fields=["rows", "corrections", "rolled_up_at"])
            transaction.on_commit(lambda: after_metering(run.pk), robust=True)
        else:
            run.delete()
            result.run_id = None
        return result


def _correct(*, run_id: int, chunk: int, watermark: int, dirty_orgs: set[int] | None = None) -> int:
    """Consume the chunk's rechecks; re-rate the stored spans of resources changed below
    the rated mark (`watermark` here). A change inside the open hour needs nothing: the
    hour is stored from the intervals as they are when it closes, and the closing run
    charges the difference from what was accrued."""
    rechecks = _in_chunk(Recheck.objects.all(), chunk)
    max_id = rechecks.order_by("-id").values_list("id", flat=True).first()
    if max_id is None:
        return 0
    dirty: dict[int, int] = {}
    if dirty_orgs is not None:  # their burn rate is read again
        dirty_orgs.update(rechecks.filter(id__lte=max_id).values_list("organization_id", flat=True).distinct())
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


def meter_chunk(*, chunk: int, until: int, max_slices: int | None = None, stagger: bool = False) -> list[SliceResult]:
    """Slices until the chunk's watermark reaches `until` and no hour is left to close
    (or `max_slices` ran, or another pass holds the chunk). `stagger`: close each hour at
    the chunk's `close_offset` (the beat task does; a catch-up by hand need not)."""
    done: list[SliceResult] = []
    while max_slices is None or len(done) < max_slices:
        result = meter_chunk_slice(chunk=chunk, until=until, stagger=stagger)
        if result is None:
            break
        done.append(result)
        if not result.more:
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
