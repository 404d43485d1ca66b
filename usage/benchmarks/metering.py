"""One metering tick over a fleet, against bare SQL writing as many rows.

Builds `--orgs` organisations and `--resources` running servers (half on capped CPU
prices, half on uncapped GPU prices, one in ten with an add-on) inside one transaction
that is rolled back at the end, so the database is left as it was. Runs one warm-up
tick (it creates the month-to-date rows of the capped servers), then times one tick:
every chunk rates minute T for every resource (`metering.meter_pass`). The baseline, in
the same transaction, inserts the same number of rows into `usage_ratedusage` with one
bare `INSERT … SELECT generate_series` and updates as many month-total rows as the tick
upserted: the write cost without any rating work.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Organization
from pricing.models import BillingModel, Price, PriceUnit, Product, ProductGroup, ProductKind, ResourceState
from usage import metering
from usage.models import MeteringChunk, MeteringRun, RatedUsage, ResourceMonthTotal, from_minute, to_minute


def add_arguments(parser):
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--orgs", type=int, default=10_000)


class _Rollback(Exception):
    pass


def run(options: dict, stdout) -> str:
    resources, orgs = options["resources"], options["orgs"]
    line = ""
    try:
        with transaction.atomic():
            t0 = to_minute(timezone.now() - timedelta(hours=2))
            _build(resources, orgs, t0, stdout)
            metering.ensure_chunks()
            MeteringChunk.objects.update(watermark_minute=t0 - 1)
            metering.meter_pass(until=from_minute(t0))  # warm-up tick: minute t0 - 1
            before = MeteringRun.objects.order_by("-id").values_list("id", flat=True).first()

            started = time.perf_counter()
            result = metering.meter_pass(until=from_minute(t0 + 1))
            seconds = time.perf_counter() - started
            rows = RatedUsage.objects.filter(run_id__gt=before).count()
            capped = ResourceMonthTotal.objects.filter(resource__external_id__startswith=f"bench-{t0 - 24 * 60}-").count()
            stdout.write(f"tick: {len(result.slices)} chunk slices, {rows} rated rows, {capped} capped totals "
                         f"upserted, {seconds:.3f}s\n")

            started = time.perf_counter()
            _baseline(rows, capped, t0 + 1, before)
            baseline = time.perf_counter() - started
            stdout.write(f"baseline: {rows} rows inserted and {capped} rows updated by bare SQL, {baseline:.3f}s\n")
            line = (f"metering resources={resources} seconds={seconds:.3f} baseline_seconds={baseline:.3f} "
                    f"ratio={seconds / baseline:.2f}")
            raise _Rollback
    except _Rollback:
        pass
    return line


def _build(resources: int, orgs: int, t0: int, stdout) -> None:
    started = time.perf_counter()
    group, _ = ProductGroup.objects.get_or_create(slug="bench", defaults={"name": "Benchmark"})
    since = from_minute(t0 - 24 * 60)
    products = []
    for n, (kind, cap) in enumerate([("cpu", "50.00"), ("cpu", "90.00"), ("gpu", None), ("gpu", None)]):
        p = Product.objects.create(code=f"bench-{kind}-{n}", name=f"bench {kind} {n}", group=group,
                                   kind=ProductKind.SERVER, billing_model=BillingModel.HOURLY)
        Price.objects.create(product=p, currency="USD", state=ResourceState.RUNNING, unit=PriceUnit.HOUR,
                             amount=Decimal("0.119") * (n + 1) * (10 if kind == "gpu" else 1),
                             monthly_cap=None if cap is None else Decimal(cap), valid_from=since)
        products.append(p)
    addon = Product.objects.create(code="bench-backup", name="bench backup", group=group, kind=ProductKind.ADDON,
                                   billing_model=BillingModel.ADDON)
    Price.objects.create(product=addon, currency="USD", state=ResourceState.RUNNING, unit=PriceUnit.HOUR,
                         amount=Decimal("0.01"), valid_from=since)
    Organization.objects.bulk_create(
        [Organization(name=f"bench {n}", slug=f"bench-{t0}-{n}", currency="USD") for n in range(orgs)],
        batch_size=2000,
    )
    params = {"t0": t0 - 24 * 60, "since": since, "n": resources, "slug": f"bench-{t0}-%",
              "products": [p.pk for p in products], "addon": addon.pk}
    with connection.cursor() as cursor:
        cursor.execute("""
            WITH o AS (SELECT array_agg(id ORDER BY id) AS ids FROM accounts_organization WHERE slug LIKE %(slug)s)
            INSERT INTO usage_resource (organization_id, external_id, kind, name, product_id, state, state_since,
                                        created_at)
            SELECT o.ids[1 + (g %% cardinality(o.ids))], 'bench-' || %(t0)s || '-' || g, 'server', 'bench ' || g,
                   (%(products)s::bigint[])[1 + (g %% 4)], 'running', %(since)s, now()
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
            FROM usage_resource WHERE external_id LIKE 'bench-' || %(t0)s || '-%%' AND id %% 10 = 0
        """, params)
        cursor.execute("ANALYZE usage_resource; ANALYZE usage_stateinterval; ANALYZE usage_addonattachment; "
                       "ANALYZE accounts_organization; ANALYZE pricing_price;")
    stdout.write(f"fleet: {orgs} organisations, {resources} running servers, built in "
                 f"{time.perf_counter() - started:.1f}s\n")


def _baseline(rows: int, updates: int, minute: int, after_run: int) -> None:
    """The same number of rated rows, written without any rating: constant values."""
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO usage_ratedusage (run_id, organization_id, resource_id, product_id, state, kind,
                                          start_minute, end_minute, minutes, unit, unit_rate, amount, currency)
            SELECT %(run)s, 1, g, 1, 'running', 'charge', %(m)s, %(m)s + 1, 1, 'hour', 0.119, 0.001983333333, 'USD'
            FROM generate_series(1, %(rows)s) AS g
        """, {"run": after_run, "m": minute, "rows": rows})
        cursor.execute("""
            UPDATE usage_resourcemonthtotal SET amount = amount + 0.001983333333
            WHERE id IN (SELECT id FROM usage_resourcemonthtotal ORDER BY id LIMIT %(n)s)
        """, {"n": updates})
