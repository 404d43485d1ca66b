"""Bulk price resolution: (organisation, product, state) triples through PriceIndex.

Creates (once, idempotently) `--organizations` organisations beside the demo price book,
then resolves `--triples` random triples at one instant. The baseline, measured in the
same run, is a plain dict lookup of as many keys: the floor any in-memory resolver pays.
The figure includes building the index (its queries) — what a metering pass pays."""

from __future__ import annotations

import random
import time

from django.db import connection
from django.utils import timezone

BENCH_SLUG_PREFIX = "bench-pricing-"


def add_arguments(parser):
    parser.add_argument("--triples", type=int, default=100_000)
    parser.add_argument("--organizations", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)


def _organizations(count: int) -> list[int]:
    from accounts.models import Organization

    existing = Organization.objects.filter(slug__startswith=BENCH_SLUG_PREFIX).count()
    Organization.objects.bulk_create(
        Organization(name=f"Bench {n}", slug=f"{BENCH_SLUG_PREFIX}{n}", currency="USD" if n % 3 else "EUR")
        for n in range(existing, count)
    )
    ids = list(Organization.objects.filter(slug__startswith=BENCH_SLUG_PREFIX).values_list("id", flat=True)[:count])
    return ids + list(Organization.objects.filter(slug="nordlicht").values_list("id", flat=True))


def run(options: dict, stdout) -> str:
    from pricing.demo import seed
    from pricing.models import BILLABLE_STATES, Product
    from pricing.resolver import PriceIndex

    seed()
    rng = random.Random(options["seed"])
    org_ids = _organizations(options["organizations"])
    product_ids = list(Product.objects.filter(billing_model__in=["hourly", "monthly", "addon"])
                       .values_list("id", flat=True))
    states = sorted(BILLABLE_STATES)
    n = options["triples"]
    triples = [(rng.choice(org_ids), rng.choice(product_ids), rng.choice(states)) for _ in range(n)]
    at = timezone.now()
    connection.ensure_connection()

    t0 = time.perf_counter()
    index = PriceIndex.load(at=at, organization_ids={t[0] for t in triples})
    answers = index.resolve_many(triples)
    seconds = time.perf_counter() - t0
    priced = sum(1 for a in answers if a is not None)

    table = {t: t[1] for t in triples}
    t0 = time.perf_counter()
    hits = [table.get(t) for t in triples]
    baseline = time.perf_counter() - t0
    assert len(hits) == n

    stdout.write(f"resolved {priced}/{n} triples over {len(set(org_ids))} organisations, {len(product_ids)} products")
    stdout.write(_sql_join(triples, at))
    return (f"pricing triples={n} seconds={seconds:.4f} baseline_seconds={baseline:.4f} "
            f"ratio={seconds / baseline:.1f}")


def _sql_join(triples, at) -> str:
    """For reference: the same triples joined to the effective-rate view in one statement,
    as metering does (PostgreSQL; the triples travel as three arrays)."""
    orgs, products, states = (list(column) for column in zip(*triples, strict=True))
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(er.rate) FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS t(o, p, s)
                LEFT JOIN pricing_effective_rate er ON er.organization_id = t.o AND er.product_id = t.p
                 AND er.state = t.s AND er.unit IN ('hour', 'gb_month', 'month')
                 AND er.valid_from <= %s AND (er.valid_to IS NULL OR er.valid_to > %s)""",
            [orgs, products, states, at, at])
        (rows,) = cursor.fetchone()
    return f"sql view join: {rows} rate rows for {len(triples)} triples in {time.perf_counter() - t0:.4f}s"
