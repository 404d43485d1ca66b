"""One metering tick for a fleet, with its credit sync; the sync beside a bare SQL baseline.

Builds (once, idempotently; prefix `bench-credit-sync-`) `--orgs` prepaid organisations
with a large opening balance and `--resources` running servers spread over them, then
meters one minute of the whole fleet with `usage.metering.meter_pass`. Usage calls the
credit sync after each chunk's slice commits; the sync time is the sum of those calls.
The baseline, measured in the same run and rolled back, is a bare
`UPDATE credits_balance … ` of the same balances plus an `INSERT INTO credits_ledgerentry
… SELECT` of one row per organisation: the least any sync must do.

Run it on a database of its own (e.g. `DATABASE_URL=postgres://…/cloudbill_bench`): the
tick meters every resource in the database. Ledger rows cannot be deleted (by design), so
the fleet stays; each further run meters the next minute.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

PREFIX = "bench-credit-sync-"
PRODUCT_CODE = "gpu-a100-1x"
OPENING = Decimal("1000000")
_sync_seconds: list[float] = []


def add_arguments(parser):
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--resources", type=int, default=100_000)


def timed_sync(run_id: int) -> None:
    """Stands in for `credits.sync.after_metering` in USAGE_AFTER_METERING, timing it."""
    from credits.sync import after_metering

    t0 = time.perf_counter()
    after_metering(run_id)
    _sync_seconds.append(time.perf_counter() - t0)


def _fleet(orgs: int, resources: int, start, stdout) -> list[int]:
    from accounts.models import Organization
    from pricing.demo import seed as seed_prices
    from pricing.models import Product
    from usage.models import Resource, StateInterval, to_minute

    have = Organization.objects.filter(slug__startswith=PREFIX).count()
    if have < orgs:
        Organization.objects.bulk_create(
            [Organization(name=f"Bench {n}", slug=f"{PREFIX}{n}", currency="USD") for n in range(have, orgs)],
            batch_size=5000,
        )
    org_ids = list(Organization.objects.filter(slug__startswith=PREFIX).order_by("id").values_list("id", flat=True)[:orgs])
    seed_prices()
    product = Product.objects.get(code=PRODUCT_CODE)
    existing = Resource.objects.filter(external_id__startswith=PREFIX).count()
    if existing < resources:
        stdout.write(f"building {resources - existing} resources…")
        minute = to_minute(start)
        for lo in range(existing, resources, 10_000):
            batch = [
                Resource(organization_id=org_ids[n % len(org_ids)], external_id=f"{PREFIX}{n}", name=f"bench {n}",
                         product=product, state="running", state_since=start)
                for n in range(lo, min(lo + 10_000, resources))
            ]
            Resource.objects.bulk_create(batch)
            StateInterval.objects.bulk_create([
                StateInterval(resource_id=r.pk, organization_id=r.organization_id, started_at=start,
                              start_minute=minute, state="running", product=product, eff_state="running",
                              eff_product=product, source="service")
                for r in batch
            ])
    with connection.cursor() as cursor:  # opening balances, ledgered, for organisations without one
        cursor.execute(
            """
            WITH fresh AS (
                INSERT INTO credits_ledgerentry (organization_id, currency, kind, amount, promo_amount, balance_after,
                                                 reason, reference, created_at)
                SELECT o.id, 'USD', 'topup', %(opening)s, 0, %(opening)s, 'Benchmark opening balance',
                       'bench:opening', %(now)s
                FROM accounts_organization o
                WHERE o.slug LIKE %(prefix)s
                  AND NOT EXISTS (SELECT 1 FROM credits_balance b WHERE b.organization_id = o.id AND b.currency = 'USD')
                RETURNING organization_id
            )
            INSERT INTO credits_balance (organization_id, currency, amount, promo_amount, burn_rate_per_hour,
                                         warnings_sent, hibernated_resources, updated_at)
            SELECT organization_id, 'USD', %(opening)s, 0, 0, '[]'::jsonb, '[]'::jsonb, %(now)s FROM fresh
            """,
            {"opening": OPENING, "now": timezone.now(), "prefix": PREFIX + "%"},
        )
    return org_ids


def _baseline(org_ids: list[int]) -> float:
    """The bare minimum, rolled back: one UPDATE of the balances, one INSERT of entries."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            t0 = time.perf_counter()
            cursor.execute(
                "UPDATE credits_balance SET amount = amount - 0.0298, updated_at = now() "
                "WHERE organization_id = ANY(%s) AND currency = 'USD'", [org_ids])
            cursor.execute(
                """INSERT INTO credits_ledgerentry (organization_id, currency, kind, amount, promo_amount,
                       balance_after, reason, reference, created_at)
                   SELECT organization_id, currency, 'usage', -0.0298, 0, amount, 'baseline', '', now()
                   FROM credits_balance WHERE organization_id = ANY(%s) AND currency = 'USD'""", [org_ids])
            seconds = time.perf_counter() - t0
        transaction.set_rollback(True)
    return seconds


def run(options: dict, stdout) -> str:
    from usage import metering
    from usage.models import MeteringChunk, from_minute

    if connection.vendor != "postgresql":
        raise CommandError("The credit-sync benchmark needs PostgreSQL (set DATABASE_URL).")
    orgs, resources = options["orgs"], options["resources"]
    now = timezone.now()
    start = (now - timedelta(days=1)).replace(second=0, microsecond=0)
    t0 = time.perf_counter()
    org_ids = _fleet(orgs, resources, start, stdout)
    metering.ensure_chunks()
    stdout.write(f"fleet ready: {len(org_ids)} organisations, {resources} resources ({time.perf_counter() - t0:.1f} s)")

    marks = [w for w in MeteringChunk.objects.values_list("watermark_minute", flat=True) if w is not None]
    if marks and len(set(marks)) > 1:
        metering.meter_pass(until=from_minute(max(marks)))  # bring every chunk to one watermark first
    if marks:
        tick_until = from_minute(max(marks) + 1)
    else:
        metering.meter_pass(until=start + timedelta(minutes=1))  # the very first minute, untimed
        tick_until = start + timedelta(minutes=2)
    if tick_until > metering.from_minute(metering.until_minute()):
        raise CommandError("The benchmark fleet has metered every minute up to now; build it afresh.")

    hooks = settings.USAGE_AFTER_METERING
    settings.USAGE_AFTER_METERING = [p for p in hooks if p != "credits.sync.after_metering"] + [
        "credits.benchmarks.credit_sync.timed_sync"]
    _sync_seconds.clear()
    try:
        t0 = time.perf_counter()
        result = metering.meter_pass(until=tick_until)
        tick = time.perf_counter() - t0
    finally:
        settings.USAGE_AFTER_METERING = hooks
    sync_seconds = sum(_sync_seconds)
    rows = sum(s.rows for s in result.slices)
    baseline = min(_baseline(org_ids) for _ in range(3))
    stdout.write(
        f"one tick: {rows} rated rows in {len(result.slices)} chunk slices; meter + sync {tick:.3f} s "
        f"(metering {tick - sync_seconds:.3f} s, credit sync {sync_seconds:.3f} s in {len(_sync_seconds)} runs)"
    )
    return (f"credit-sync orgs={orgs} seconds={sync_seconds:.3f} baseline_seconds={baseline:.3f} "
            f"ratio={sync_seconds / baseline:.2f}")
