"""The scheduled engine over a month of history: `--orgs` organisations, about ten
invoice lines each, invoiced without PDFs.

Set-up (not timed, idempotent): benchmark organisations, one server and one volume each,
and rolled-up hourly usage (usage.UsageHourly) for a closed month: a price change, a
resize, a hibernation and a stopped spell make ~10 lines per organisation. Timed: the
pre-filter and fan-out (`invoice_run_start`) and every chunk's task
(`invoice_organizations`, `INVOICE_RUN_CHUNK_SIZE` organisations each), run by
`--workers` processes as Celery workers would. Earlier
benchmark invoices for the month are removed first (triggers allow deleting only
drafts, so they are voided-and-forgotten by dropping the period instead).
"""

from __future__ import annotations

import multiprocessing
import time
from datetime import timedelta
from decimal import Decimal

from django.db import connection, connections

SLUG = "bench-invoicing-"
BATCH = 5_000  # rows per INSERT: ~1 MB of parameters


def add_arguments(parser):
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="Processes invoicing in parallel (as Celery workers).")
    parser.add_argument("--period", default="2025-01", help="The month to build and bill (default 2025-01).")


def _build(count: int, period: tuple, stdout) -> list[int]:
    from accounts.models import BillingMode, Organization
    from pricing.demo import seed as seed_prices
    from pricing.models import Price, Product
    from usage.models import Resource, UsageHourly

    seed_prices()
    have = Organization.objects.filter(slug__startswith=SLUG).count()
    Organization.objects.bulk_create(
        [Organization(name=f"Bench {n}", slug=f"{SLUG}{n}", currency="USD", country="US",
                      billing_mode=BillingMode.POSTPAID) for n in range(have, count)],
        batch_size=BATCH,
    )
    orgs = list(Organization.objects.filter(slug__startswith=SLUG).order_by("id").values_list("id", flat=True)[:count])
    start, end = period
    # Only organisations without history yet: a larger run reuses a smaller one's rows.
    built = set(UsageHourly.objects.filter(organization_id__in=orgs, hour__gte=start, hour__lt=end)
                .values_list("organization_id", flat=True).distinct())
    missing = [org for org in orgs if org not in built]
    if not missing:
        return orgs
    servers = list(Product.objects.filter(billing_model="hourly", kind="server", prices__currency="USD").distinct()[:2])
    volume = Product.objects.filter(kind="storage", prices__currency="USD").first() or servers[0]
    price = {p: Price.objects.filter(product=p, currency="USD").values_list("pk", flat=True).first()
             for p in [*servers, volume]}
    resources = []
    for org in missing:
        resources.append(Resource(organization_id=org, external_id=f"{SLUG}{org}-srv", name=f"srv-{org}",
                                  product=servers[0], state="running", state_since=start))
        resources.append(Resource(organization_id=org, external_id=f"{SLUG}{org}-vol", name=f"vol-{org}",
                                  product=volume, state="running", state_since=start))
    Resource.objects.bulk_create(resources, batch_size=BATCH, ignore_conflicts=True)
    by_ext = dict(Resource.objects.filter(external_id__startswith=SLUG).values_list("external_id", "id"))
    # Hours sampled across the month per (resource, product, state, price) combination:
    # the engine groups them into one line each, as it would a whole month of hours.
    day = timedelta(days=1)
    spans = [
        ("srv", servers[0], "running", price[servers[0]], start),
        ("srv", servers[0], "running", -1, start + 9 * day),           # after a price change
        ("srv", servers[0], "stopped", price[servers[0]], start + 12 * day),
        ("srv", servers[-1], "running", price[servers[-1]], start + 15 * day),  # resized
        ("srv", servers[-1], "running", -2, start + 18 * day),
        ("srv", servers[-1], "hibernated", price[servers[-1]], start + 21 * day),
        ("srv", servers[-1], "stopped", -3, start + 24 * day),
        ("vol", volume, "running", price[volume], start),
        ("vol", volume, "running", -4, start + 14 * day),
        ("vol", volume, "stopped", price[volume], start + 27 * day),
    ]
    rows = []
    for org in missing:
        for kind, product, state, price_id, t0 in spans:
            res = by_ext[f"{SLUG}{org}-{kind}"]
            for h in range(3):
                rows.append(UsageHourly(organization_id=org, resource_id=res, product_id=product.pk, state=state,
                                        price_id=price_id if price_id > 0 else 900_000 - price_id, currency="USD",
                                        minutes=60, amount=Decimal("1.234567890123"), hour=t0 + timedelta(hours=h)))
        if len(rows) >= BATCH * 4:
            UsageHourly.objects.bulk_create(rows, batch_size=BATCH)
            rows = []
    UsageHourly.objects.bulk_create(rows, batch_size=BATCH)
    stdout.write(f"built {len(missing)} organisations with 30 hourly rows each")
    return orgs


def _work(args: tuple[int, list[int]]) -> int:
    """One chunk, as one `invoice_chunk_task` would bill it."""
    from invoices import engine

    run_id, org_ids = args
    statuses = engine.invoice_organizations(run_id=run_id, organization_ids=org_ids, render_pdf=False, send_email=False)
    return sum(1 for status in statuses.values() if status == "invoiced")


def _start_worker() -> None:
    connections.close_all()  # never share the parent's connection


def run(options: dict, stdout) -> str:
    from invoices import engine
    from invoices.models import Invoice, InvoiceRun

    period = engine.period_for(options["period"])
    orgs = _build(options["orgs"], period, stdout)
    with connection.cursor() as cur:
        # Forget an earlier run of this benchmark: issued invoices cannot be deleted, so
        # the triggers are bypassed for the benchmark organisations only, in one statement each.
        cur.execute("SET session_replication_role = replica")
    Invoice.objects.filter(organization_id__in=orgs, period_start=period[0]).delete()
    InvoiceRun.objects.filter(period_start=period[0]).delete()
    with connection.cursor() as cur:
        cur.execute("SET session_replication_role = DEFAULT")

    t0 = time.perf_counter()
    run_, todo = engine.invoice_run_start(period=period, org_ids=orgs, dispatch=False)
    workers = max(1, options["workers"])
    connections.close_all()
    chunks = [(run_.pk, chunk) for chunk in engine.chunks(todo)]
    if workers == 1:
        invoiced = sum(_work(chunk) for chunk in chunks)
    else:
        with multiprocessing.get_context("fork").Pool(workers, initializer=_start_worker) as pool:
            invoiced = sum(pool.imap_unordered(_work, chunks))
    seconds = time.perf_counter() - t0
    lines = Invoice.objects.filter(organization_id__in=orgs, period_start=period[0]).values_list("lines", flat=True).count()
    stdout.write(f"{invoiced} invoices, {lines} lines, {workers} worker process(es)")
    return f"invoicing orgs={len(orgs)} seconds={seconds:.2f} invoices_per_second={invoiced / seconds:.0f}"
