"""Credit sync: deduct each metering run's charge from the balances, exactly once.

A run charges its rated spans (a closed hour, corrections), its accruals (the open
hour's minutes, per organisation: usage stores nothing per resource until the hour
closes), and a run that closes an hour charges minus the accruals of that hour it
closes (`RUN_LINES_SQL`). So the balances move every minute, and once the hour closes the
ledger's usage entries add up to the rated spans exactly (12 places): a closing run whose
hour went as accrued charges nothing and writes nothing.

Usage calls `after_metering(run_id)` after each metering slice commits (hooks are in
`settings.USAGE_AFTER_METERING`); `sync_pending` sweeps up runs whose hook never ran (a
crash between metering and sync, a worker killed). Exactly once rests on two keys, both
written in the settling transaction: `SettledRun(run_id)` (inserted first; a second
settlement blocks on it and then does nothing) and the ledger's unique
`(organization, "usage-run:<run id>")` reference.

A run is settled set-based, whatever the number of organisations:
1. one statement aggregates the run's lines (above) into a charge
   per (organisation, currency) and locks those balance rows in id order
   (`ORDER BY id FOR UPDATE`: the same discipline as `services.ledger._lock_balance`, so the sync
   and single posts never deadlock in a cycle and never lose an update); an
   organisation's first charge creates its balance row first;
2. one statement, with the charges passed back as arrays: `INSERT … SELECT` of one usage
   entry per (organisation, currency), with `balance_after` and the promotional part,
   then `UPDATE` of the balances from the inserted rows, and the promotional grants consumed earliest-expiry-first with a
   window function; it also says which balances fell below their auto top-up threshold.

Afterwards, outside the settling transaction: organisations that fell below their auto
top-up threshold get one attempt, and prepaid organisations out of credit are hibernated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from core import metrics
from credits import hibernation, services
from credits.models import Balance, SettledRun

if TYPE_CHECKING:
    from django.db.backends.utils import CursorWrapper

logger = logging.getLogger(__name__)
# The sweeper looks this far back for runs nobody settled, this many runs per pass.
SWEEP_WINDOW = timedelta(days=2)
SWEEP_BATCH = 500
NO_THRESHOLD = Decimal("-Infinity")


@dataclass
class SyncResult:
    run_id: int
    settled: bool
    # (organization_id, currency, balance after, below its auto top-up threshold) of every
    # balance the run moved.
    balances: list[tuple[int, str, Decimal, bool]] = field(default_factory=list)


def after_metering(run_id: int) -> SyncResult:
    """The `USAGE_AFTER_METERING` hook."""
    result = settle_run(run_id=run_id)
    if result.settled:
        follow_up(result)
    return result


def settle_run(*, run_id: int, now: datetime | None = None) -> SyncResult:
    from usage.models import MeteringRun, RunKind

    now = now or timezone.now()
    run = MeteringRun.objects.filter(pk=run_id).only("id", "kind").first()
    if run is None:
        return SyncResult(run_id=run_id, settled=False)
    with transaction.atomic():
        if not _claim(run_id, now):
            return SyncResult(run_id=run_id, settled=False)
        if run.kind != RunKind.METER:
            return SyncResult(run_id=run_id, settled=True)  # imported history was billed by the old system
        balances = _settle(run_id, now)
    return SyncResult(run_id=run_id, settled=True, balances=balances)


def _claim(run_id: int, now: datetime) -> bool:
    """Insert the run's SettledRun row; False if it was already there. A concurrent
    settler of the same run waits on the primary key until this transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO credits_settledrun (run_id, settled_at) VALUES (%s, %s) "
            "ON CONFLICT (run_id) DO NOTHING RETURNING run_id",
            [run_id, now],
        )
        return cursor.fetchone() is not None


# What a run charges, line by line: its rated spans (by the `run_id` index), its
# accruals (the open hour, per organisation), and, for a run that closes an hour, minus
# the accruals of that hour it closes (the accrual runs of its chunk inside its window,
# by the `usage_run_accrued` index). `n` counts rated spans only. Telescoping amounts make
# a closing run's charge exactly zero when nothing changed inside the hour.
RUN_LINES_SQL = """
run AS (SELECT chunk, from_minute, until_minute, accrued FROM usage_meteringrun WHERE id = %(run)s),
lines AS (
    SELECT organization_id, currency, amount, id, 1 AS n, start_minute, end_minute
    FROM usage_ratedusage WHERE run_id = %(run)s
    UNION ALL
    SELECT organization_id, currency, amount, NULL, 0, start_minute, end_minute
    FROM usage_usageaccrual WHERE run_id = %(run)s
    UNION ALL
    SELECT a.organization_id, a.currency, -a.amount, NULL, 0, a.start_minute, a.end_minute
    FROM run
    JOIN usage_meteringrun m ON m.chunk = run.chunk AND m.accrued AND m.from_minute >= run.from_minute
         AND m.until_minute <= run.until_minute AND m.id <> %(run)s
    JOIN usage_usageaccrual a ON a.run_id = m.id
    WHERE NOT run.accrued
)"""

# The run's charge per (organisation, currency), joined to the balances and locking them
# in id order; `groups` says whether every charged organisation already has a balance row.
CHARGES_AND_LOCK_SQL = """
WITH {run_lines},
charges AS MATERIALIZED (
    SELECT organization_id, currency, SUM(amount) AS total, MIN(id) AS first_id, MAX(id) AS last_id,
           SUM(n) AS n, MIN(start_minute) AS start_minute, MAX(end_minute) AS end_minute
    FROM lines
    GROUP BY organization_id, currency
    HAVING SUM(amount) <> 0
)
SELECT c.organization_id, c.currency, c.total, c.first_id, c.last_id, c.n, c.start_minute, c.end_minute,
       (SELECT COUNT(*) FROM charges) AS groups
FROM charges c
JOIN credits_balance b ON b.organization_id = c.organization_id AND b.currency = c.currency
ORDER BY b.id
FOR UPDATE OF b
"""

HAS_CHARGES_SQL = """
WITH {run_lines}
SELECT 1 FROM lines GROUP BY organization_id, currency HAVING SUM(amount) <> 0 LIMIT 1
"""

ENSURE_BALANCES_SQL = """
WITH {run_lines}
INSERT INTO credits_balance (organization_id, currency, amount, promo_amount, burn_rate_per_hour,
                             warnings_sent, hibernated_resources, updated_at)
SELECT DISTINCT organization_id, currency, 0, 0, 0, '[]'::jsonb, '[]'::jsonb, %(now)s
FROM lines
ON CONFLICT (organization_id, currency) DO NOTHING
"""

CHARGES_AND_LOCK_SQL, HAS_CHARGES_SQL, ENSURE_BALANCES_SQL = (
    sql.replace("{run_lines}", RUN_LINES_SQL) for sql in (CHARGES_AND_LOCK_SQL, HAS_CHARGES_SQL, ENSURE_BALANCES_SQL)
)

# One statement: the usage entries, the balances moved by them, the promotional grants
# consumed. Amounts are exact NUMERIC; a net credit (reversals of a late stop) is paid
# credit, a deduction takes promotional credit first.
SETTLE_SQL = """
WITH charges AS (
    -- The charges travel back as arrays: the rated rows are scanned once per run.
    SELECT * FROM unnest(%(orgs)s::bigint[], %(currencies)s::text[], %(totals)s::numeric[], %(firsts)s::bigint[],
                         %(lasts)s::bigint[], %(counts)s::int[], %(starts)s::bigint[], %(ends)s::bigint[])
        AS c(organization_id, currency, total, first_id, last_id, n, start_minute, end_minute)
),
ins AS (
    INSERT INTO credits_ledgerentry (
        organization_id, currency, kind, amount, promo_amount, balance_after, reason, reference,
        metering_run_id, usage_first_id, usage_last_id, usage_rows, period_start, period_end, created_at)
    SELECT c.organization_id, c.currency, 'usage', -c.total,
           -LEAST(b.promo_amount, GREATEST(c.total, 0)),
           b.amount - c.total,
           'Metered usage ' || to_char(to_timestamp(c.start_minute * 60) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')
               || '–' || to_char(to_timestamp(c.end_minute * 60) AT TIME ZONE 'UTC', 'HH24:MI') || ' UTC',
           'usage-run:' || %(run)s::text,
           %(run)s, c.first_id, c.last_id, c.n,
           to_timestamp(c.start_minute * 60), to_timestamp(c.end_minute * 60), %(now)s
    FROM charges c
    JOIN credits_balance b ON b.organization_id = c.organization_id AND b.currency = c.currency
    ON CONFLICT (organization_id, reference) WHERE reference <> '' DO NOTHING
    RETURNING organization_id, currency, amount, promo_amount
),
balances AS (
    UPDATE credits_balance b
    SET amount = b.amount + i.amount,
        promo_amount = b.promo_amount + i.promo_amount,
        updated_at = %(now)s,
        depleted_at = CASE WHEN b.amount + i.amount <= 0 THEN COALESCE(b.depleted_at, %(now)s) END
    FROM ins i
    WHERE b.organization_id = i.organization_id AND b.currency = i.currency
    RETURNING b.organization_id, b.currency, b.amount
),
grants AS (
    SELECT g.id, g.remaining, -i.promo_amount AS take,
           COALESCE(SUM(g.remaining) OVER (
               PARTITION BY g.organization_id, g.currency ORDER BY g.expires_at, g.id
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
    FROM credits_promogrant g
    JOIN ins i ON i.organization_id = g.organization_id AND i.currency = g.currency AND i.promo_amount < 0
    WHERE g.expired_at IS NULL AND g.remaining > 0
),
consumed AS (
    UPDATE credits_promogrant p
    SET remaining = p.remaining - LEAST(gr.remaining, gr.take - gr.before)
    FROM grants gr
    WHERE p.id = gr.id AND gr.take > gr.before
    RETURNING p.id
)
SELECT bl.organization_id, bl.currency, bl.amount,
       COALESCE(a.enabled AND bl.amount < a.threshold, false) AS below_auto_topup,
       (SELECT COUNT(*) FROM consumed) AS grants_consumed
FROM balances bl
LEFT JOIN credits_autotopupsettings a ON a.organization_id = bl.organization_id
"""


def _settle(run_id: int, now: datetime) -> list[tuple[int, str, Decimal, bool]]:
    params: dict[str, Any] = {"run": run_id, "now": now}
    with connection.cursor() as cursor:
        cursor.execute(CHARGES_AND_LOCK_SQL, params)
        charges = cursor.fetchall()
        if charges and len(charges) < charges[0][-1] or not charges and _has_charges(cursor, run_id):
            # The first charge of some organisation: create its balance, then lock again.
            cursor.execute(ENSURE_BALANCES_SQL, params)
            cursor.execute(CHARGES_AND_LOCK_SQL, params)
            charges = cursor.fetchall()
        if not charges:
            return []
        columns = list(zip(*charges, strict=True))
        params.update({"orgs": list(columns[0]), "currencies": list(columns[1]), "totals": list(columns[2]),
                       "firsts": list(columns[3]), "lasts": list(columns[4]), "counts": list(columns[5]),
                       "starts": list(columns[6]), "ends": list(columns[7])})
        cursor.execute(SETTLE_SQL, params)
        moved = [(org, cur, amount, below) for org, cur, amount, below, _ in cursor.fetchall()]
        metrics.ledger_posted((cur, "usage", -total) for org, cur, total, *_ in charges if (org, cur) in {m[:2] for m in moved})
        return moved


def _has_charges(cursor: CursorWrapper, run_id: int) -> bool:
    cursor.execute(HAS_CHARGES_SQL, {"run": run_id})
    return cursor.fetchone() is not None


def follow_up(result: SyncResult) -> None:
    """After the settling transaction: auto top-up for balances now below their
    threshold, hibernation for prepaid organisations out of credit. Each action is its
    own short transaction under the balance lock (the services re-check everything)."""
    for org, currency, _amount, below in result.balances:
        if below:
            services.auto_topup_check(organization_id=org, currency=currency)
    grace = settings.CREDITS_HIBERNATE_GRACE_AMOUNT
    out = [org for org, _currency, amount, _below in result.balances if amount <= -grace]
    if out:
        for balance_id in Balance.objects.filter(organization_id__in=out, hibernated_at__isnull=True) \
                .order_by("id").values_list("id", flat=True):
            hibernation.hibernate(balance_id=balance_id)


def sync_pending(*, now: datetime | None = None) -> int:
    """Settle metering runs whose hook never ran. Safe beside the hook: SettledRun decides."""
    from usage.models import MeteringRun, RunKind

    now = now or timezone.now()
    ids = list(
        MeteringRun.objects.filter(kind=RunKind.METER, created_at__gte=now - SWEEP_WINDOW)
        .filter(~Exists(SettledRun.objects.filter(run_id=OuterRef("pk"))))
        .order_by("id").values_list("id", flat=True)[:SWEEP_BATCH]
    )
    for run_id in ids:
        after_metering(run_id)
    return len(ids)
