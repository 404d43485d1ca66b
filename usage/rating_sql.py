"""The SQL that rates usage: templates and the builders that fill them in.

Pure string work, no database access: `usage.metering` runs what `build` returns inside
a slice's transaction. Every template reads state intervals, add-on attachments and the
`pricing_effective_rate` view (`pricing.sql`) and is written for PostgreSQL only (exact
NUMERIC; `generate_series`, `LATERAL`, `unnest`).

- `RATE`: price a window in one `INSERT … SELECT`, split at every state, product, price
  and clock-hour boundary; capped hourly prices are clamped against `ResourceMonthTotal`
  and that total is kept in the same statement.
- `RATES`: each organisation's burn rate at a minute (`AccrualRate`), read from the same
  pieces; `ACCRUE`: the open hour's window charged from those rates, one `UsageAccrual`
  row per organisation and currency (nothing per resource).
- `MINIMUMS`: find the runs that ended in a window shorter than their minimum billable
  time (the caller prices and inserts those few rows).
- `REVERSE`: a `reversal` row for every live rated row of the given resources from a
  minute on, and `ResourceMonthTotal` taken down by as much.

A window is either a chunk's `[lo, hi)` (`chunk_window_sql`) or one `(resource, lo, hi)`
per corrected resource (`resource_windows_sql` with the `win` CTE from `win_cte`).
Parameters: `chunks`, `chunk`, `run`, `kind` (and `res`/`from` for `REVERSE`).
"""

from __future__ import annotations

from pricing.sql import EFFECTIVE_RATE_VIEW

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
    WHERE organization_id = ANY(%(orgs)s::bigint[]) AND unit IN ('hour', 'month')
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
# against the month-to-date total (`final`). Shared by `RATE` and `ACCRUE`.
_PRICED = """
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
)
"""

# Store the window's spans and keep the month-to-date totals, in one statement.
RATE = """
WITH {win}
{pieces},
{priced},
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

# The burn rate per organisation and currency at the window's first minute (`lo`,
# `hi = lo + 1`): every piece in force then, an hourly rate as it is (0 once a capped
# month is used up, by the closed hours' total), a monthly rate as its hourly share of
# this month.
RATES = """
WITH {win}
{pieces},
cur AS (
    SELECT piece.organization_id, piece.currency,
           CASE WHEN piece.unit = 'month'
                THEN piece.rate * 60 / (EXTRACT(EPOCH FROM (m.month + interval '1 month') - m.month) / 60)
                WHEN piece.monthly_cap IS NOT NULL AND COALESCE(t.amount, 0) >= piece.monthly_cap THEN 0
                ELSE piece.rate END AS per_hour
    FROM piece
    CROSS JOIN LATERAL (SELECT date_trunc('month', to_timestamp(piece.s * 60) AT TIME ZONE 'UTC') AS month) m
    LEFT JOIN usage_resourcemonthtotal t
           ON t.resource_id = piece.resource_id AND t.product_id = piece.product_id AND t.month = m.month::date
)
INSERT INTO usage_accrualrate (chunk, organization_id, currency, rate_per_hour, minute)
SELECT %(chunk)s, organization_id, currency, ROUND(SUM(per_hour), 12), {lo}
FROM cur GROUP BY organization_id, currency HAVING SUM(per_hour) <> 0
"""

# The open hour, set-based per organisation: its burn rate × the window's minutes
# (telescoping, as spans are: at a steady rate the hour's accruals add up to one
# Decimal however the minutes were cut), one `UsageAccrual` row per organisation and
# currency, nothing per resource.
ACCRUE = """
INSERT INTO usage_usageaccrual (run_id, organization_id, currency, start_minute, end_minute, amount)
SELECT %(run)s, organization_id, currency, %(lo)s, %(hi)s,
       ROUND(rate_per_hour * %(hi)s / 60, 12) - ROUND(rate_per_hour * %(lo)s / 60, 12)
FROM usage_accrualrate WHERE chunk = %(chunk)s
"""


def orgs_window_sql(lo: int, hi: int) -> dict[str, str]:
    """`chunk_window_sql` for some of the chunk's organisations (`%(orgs)s` holds only those)."""
    return chunk_window_sql(lo, hi)


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
# The intervals that ended in the window come first, on their own (the (organization,
# end_minute) index): joined from the rates instead, the plan probed every interval of
# every organisation once per rate (0.6 s a close at 100,000 resources).
MINIMUMS = """
WITH {win}
{pieces},
ended AS MATERIALIZED (
    SELECT i.* FROM usage_stateinterval i
    {join_i}
    WHERE {filter_i} AND i.end_minute >= {lo} AND i.end_minute < {hi} AND i.end_minute > i.start_minute
)
SELECT i.organization_id, i.resource_id, i.eff_product_id, i.eff_state, i.end_minute,
       r.min_billable_minutes - (i.end_minute - %(run_start)s) AS missing, r.rate, r.currency, r.price_id,
       r.contract_id
FROM ended i
JOIN pricing_product p ON p.id = i.eff_product_id
JOIN rates r ON r.organization_id = i.organization_id AND r.product_id = i.eff_product_id AND r.state = i.eff_state
     AND r.unit = 'hour' AND r.vf <= i.end_minute - 1 AND (r.vt IS NULL OR r.vt > i.end_minute - 1)
WHERE p.billing_model = 'hourly' AND r.min_billable_minutes > i.end_minute - i.start_minute
  AND NOT EXISTS (SELECT 1 FROM usage_stateinterval n
                  WHERE n.resource_id = i.resource_id AND n.start_minute = i.end_minute AND n.eff_state = i.eff_state
                    AND (n.end_minute IS NULL OR n.end_minute > n.start_minute))
  AND r.min_billable_minutes > i.end_minute - %(run_start)s
""".replace("%(run_start)s", _RUN_START)

REVERSE = """
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



# The chunk's organisations as an array of ids (`%(orgs)s`, read once per statement by
# the caller), so the organisation indexes serve the lookup and the planner knows how many
# there are: a filter on `organization_id % chunks = chunk` is estimated at 0.5% of the
# rows whatever the chunk count, and with that estimate PostgreSQL joined the window's
# pieces to the rates in a nested loop (3.4M comparisons for 2,750 spans, 0.4 s of a
# 10,000-resource hour close).
_IN_CHUNK = "{col} = ANY(%(orgs)s::bigint[])"


def chunk_window_sql(lo: int, hi: int) -> dict[str, str]:
    return {
        **_MINUTE_SQL, "view": EFFECTIVE_RATE_VIEW, "lo": str(int(lo)), "hi": str(int(hi)), "join_i": "", "join_a": "",
        "filter_i": _IN_CHUNK.format(col="i.organization_id"),
        "filter_a": _IN_CHUNK.format(col="a.organization_id"),
    }


def chunk_window_sql_params() -> dict[str, str]:
    """`chunk_window_sql` with the bounds as the parameters `lo` and `hi` (the same text
    for every window: core.prepared plans it once per session)."""
    return {**chunk_window_sql(0, 0), "lo": "%(lo)s::bigint", "hi": "%(hi)s::bigint"}


def resource_windows_sql() -> dict[str, str]:
    return {
        **_MINUTE_SQL, "view": EFFECTIVE_RATE_VIEW, "lo": "w.lo", "hi": "w.hi",
        "join_i": "JOIN win w ON w.resource_id = i.resource_id",
        "join_a": "JOIN win w ON w.resource_id = a.resource_id",
        "filter_i": "TRUE", "filter_a": "TRUE",
    }


def win_cte(windows: list[tuple[int, int, int]] | None, params: dict) -> str:
    if windows is None:
        return ""
    params.update(w_res=[w[0] for w in windows], w_lo=[w[1] for w in windows], w_hi=[w[2] for w in windows])
    return ("win(resource_id, lo, hi) AS (SELECT * FROM unnest(%(w_res)s::bigint[], %(w_lo)s::bigint[], "
            "%(w_hi)s::bigint[])),")


def build(template: str, fmt: dict[str, str], win: str) -> str:
    pieces = _PIECES.format(**fmt)
    return template.format(win=win, pieces=pieces.strip(), priced=_PRICED.strip(), **fmt)
