"""The scheduled engine over a realistic month, against bare SQL doing the same writes.

Set-up (not timed, idempotent): `--orgs` benchmark organisations (USD; a third prepaid;
customers in the US, Germany and the Netherlands, taxed at their country's rate, and in
France with a VAT id, reverse charged; every fifth one with a 10 % coupon), ten
resources each (eight servers at mixed prices, cheap CPU to 8×H100, and two IPv4
addresses at a monthly fee), running all month: the hourly rollup (usage.UsageHourly)
gets one row per resource and clock hour, 744 per resource in a 31-day month, and the
daily rollup (usage.UsageDaily) their sums per UTC day, as `usage.rollups` writes both. One server
of each organisation changes price mid-month and another hibernates from the 20th, so an
invoice has twelve usage lines, a discount for some, taxes for most.

The month's rows are then vacuumed and analysed, as autovacuum leaves a month that was
written an hour at a time (hint bits set, visibility map current): without it the
engine, reading first, paid for setting the hint bits of freshly loaded rows and the
baseline, reading after it, did not.

The month billed is the latest one at or before `--period` that the benchmark
organisations have no invoice for (issued invoices are immutable, so every run bills a
month of its own); its hourly and daily rows are built before and deleted after the run.

Timed: the pre-filter and fan-out (`invoice_run_start`) and every chunk's task
(`invoice_organizations`, `INVOICE_RUN_CHUNK_SIZE` organisations each, no PDFs, no
emails), run by `--workers` processes as Celery workers would, each chunk committed.

Baseline, in the same run, one process, chunk by chunk, each chunk one committed
transaction of bare SQL: the usage read by hand the way the engine reads it (the daily
rows of the whole days grouped, each group's first and last hour from the hourly
index, the hours of partial days, none in a whole month), then the
same rows the engine wrote (the invoices, their lines, the ledger entries, the audit
rows, copied from what the engine wrote) inserted into real tables made `LIKE … INCLUDING
ALL` (same columns, indexes and constraints), the balances and run items updated in
one statement each, and one counter update. It is the floor: reading the month and
writing the month's documents, with no billing logic. The rows it copies are found before
its clock starts, into temporary tables, one per table and chunk (the audit log has no
index on the invoice an entry names: found inside the timing, the scan grew run after run
and made the baseline slower than the engine).

Cleanup needs no superuser and disables no trigger: the baseline's tables are dropped,
the month's hourly and daily rows deleted; the issued invoices stay (they are immutable).
"""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import connection, connections, transaction

SLUG = "bench-invoicing-"
BATCH = 2_000
RESOURCES = 10
COUPON = "bench-invoicing-10"
# Tax set-up: (country, VAT id or "", rate kept for the country or None).
CUSTOMERS = [("US", "", None), ("DE", "", Decimal("19")), ("NL", "", Decimal("21")), ("FR", "FR40303265045", None)]  # a VAT id that passes its check digits: reverse charge
# The tables whose rows the baseline copies from what the engine wrote (the first one's
# row count is the chunk's invoices), and all it writes to.
COPIED_ROWS = ("invoices_invoice", "invoices_invoiceline", "credits_ledgerentry", "accounts_auditlog")
COPIED = ("invoices_invoice", "invoices_invoiceline", "credits_ledgerentry", "accounts_auditlog", "credits_balance",
          "invoices_invoicerunitem")


def add_arguments(parser):
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="Processes invoicing in parallel (as Celery workers).")
    parser.add_argument("--period", default="2025-01", help="Bill this month, or the latest free one before it.")


def _organizations(count: int) -> list[int]:
    from accounts.models import BillingMode, Organization
    from invoices.models import Coupon, CouponKind, CouponRedemption, TaxRate

    have = Organization.objects.filter(slug__startswith=SLUG).count()
    new = []
    for n in range(have, count):
        country, vat_id, _ = CUSTOMERS[n % len(CUSTOMERS)]
        new.append(Organization(name=f"Bench {n}", slug=f"{SLUG}{n}", currency="USD", country=country, vat_id=vat_id,
                                billing_mode=BillingMode.PREPAID if n % 3 == 0 else BillingMode.POSTPAID))
    Organization.objects.bulk_create(new, batch_size=BATCH)
    orgs = list(Organization.objects.filter(slug__startswith=SLUG).order_by("id").values_list("id", flat=True)[:count])
    for country, _, rate in CUSTOMERS:
        if rate is not None and not TaxRate.objects.filter(country=country).exists():
            TaxRate.objects.create(country=country, rate=rate, valid_from=date(2000, 1, 1))
    coupon, _ = Coupon.objects.get_or_create(code=COUPON, defaults={"name": "Bench ten", "kind": CouponKind.PERCENT,
                                                                    "percent_off": Decimal(10)})
    CouponRedemption.objects.bulk_create(
        [CouponRedemption(coupon=coupon, organization_id=org, starts_at=datetime(2000, 1, 1, tzinfo=UTC))
         for org in orgs[::5]], ignore_conflicts=True, batch_size=BATCH)
    return orgs


def _resources(orgs: list[int]) -> list[tuple]:
    """(resource id, organisation, product, price, price from the 16th, state from the 20th
    and its price, hourly amount before and after): ten per organisation."""
    from pricing.demo import seed as seed_prices
    from pricing.models import Price, Product
    from usage.models import Resource

    seed_prices()
    servers = list(Product.objects.filter(billing_model="hourly", kind="server").order_by("pk"))
    ipv4 = Product.objects.get(code="ipv4")
    prices = {(p.product_id, p.state): p for p in Price.objects.filter(currency="USD", unit__in=("hour", "month"))
              .order_by("valid_from")}
    Resource.objects.bulk_create([
        Resource(organization_id=org, external_id=f"{SLUG}{org}-{i}", name=f"{'srv' if i < 8 else 'ip'}-{org}-{i}",
                 product=servers[(org + i) % len(servers)] if i < 8 else ipv4, state="running",
                 state_since=datetime(2000, 1, 1, tzinfo=UTC))
        for org in orgs for i in range(RESOURCES)
    ], batch_size=BATCH, ignore_conflicts=True)
    out = []
    rows = Resource.objects.filter(organization_id__in=orgs, external_id__startswith=SLUG).values_list(
        "id", "organization_id", "product_id", "external_id")
    for res_id, org, product, ext in rows:
        i = int(ext.rsplit("-", 1)[1])
        running = prices[(product, "running")]
        later, state = running, "running"
        if i == 3:  # a price change on the 16th: another price row, 15 % less
            later = Price(pk=running.pk + 100_000, amount=(running.amount * Decimal("0.85")).quantize(Decimal("1e-6")),
                          unit=running.unit)
        elif i == 4 and (product, "hibernated") in prices:  # hibernated from the 20th
            later, state = prices[(product, "hibernated")], "hibernated"
        out.append((res_id, org, product, running.pk, later.pk, state, _hourly(running), _hourly(later)))
    return out


def _hourly(price) -> Decimal:
    """One clock hour at the price: an hourly rate, or a monthly fee over a 31-day month."""
    return price.amount if price.unit == "hour" else price.amount / Decimal(744)


def _build_month(orgs: list[int], period: tuple[datetime, datetime], stdout) -> int:
    """The month's hourly rollup for every benchmark resource, in bare INSERT … SELECT
    generate_series statements (set-up, not timed)."""
    start, end = period
    resources = _resources(orgs)
    _delete_month(orgs, period)
    change, hibernate = start + timedelta(days=15), start + timedelta(days=19)
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        for i in range(0, len(resources), 500):
            values = resources[i:i + 500]
            cur.execute(
                "INSERT INTO usage_usagehourly (organization_id, resource_id, product_id, state, price_id, currency,"
                " minutes, amount, hour) "
                "SELECT v.org, v.res, v.product, CASE WHEN h >= %s AND v.state <> 'running' THEN v.state ELSE 'running' END,"
                " CASE WHEN (h >= %s AND v.state = 'running') OR (h >= %s AND v.state <> 'running')"
                " THEN v.later ELSE v.price END, 'USD', 60,"
                " CASE WHEN (h >= %s AND v.state = 'running') OR (h >= %s AND v.state <> 'running')"
                " THEN v.amount_later ELSE v.amount END, h "
                "FROM (VALUES " + ", ".join(["(%s, %s, %s, %s, %s, %s, %s::numeric, %s::numeric)"] * len(values)) + ") "
                "AS v(res, org, product, price, later, state, amount, amount_later) "
                "CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz - interval '1 hour', interval '1 hour') h",
                [hibernate, change, hibernate, change, hibernate, *[x for v in values for x in v], start, end],
            )
        # The daily rollup, as usage.rollups adds it beside the hourly one: each day's sums.
        cur.execute(
            "INSERT INTO usage_usagedaily (organization_id, resource_id, product_id, state, price_id, currency, day,"
            " minutes, amount) SELECT organization_id, resource_id, product_id, state, price_id, currency,"
            " (hour AT TIME ZONE 'UTC')::date, SUM(minutes), SUM(amount) FROM usage_usagehourly"
            " WHERE organization_id = ANY(%s) AND hour >= %s AND hour < %s GROUP BY 1, 2, 3, 4, 5, 6, 7",
            [orgs, start, end])
    hours = int((end - start).total_seconds() // 3600)
    stdout.write(f"built {len(orgs)} organisations × {RESOURCES} resources × {hours} hours "
                 f"= {len(resources) * hours} hourly rows in {time.perf_counter() - t0:.1f} s")
    return len(resources) * hours


def _delete_month(orgs: list[int], period: tuple[datetime, datetime]) -> None:
    from usage.models import UsageDaily, UsageHourly

    UsageHourly.objects.filter(organization_id__in=orgs, hour__gte=period[0], hour__lt=period[1]).delete()
    UsageDaily.objects.filter(organization_id__in=orgs, day__gte=period[0].date(), day__lt=period[1].date()).delete()


def _free_month(orgs: list[int], label: str) -> tuple[datetime, datetime]:
    """The latest month at or before `label` without any benchmark invoice."""
    from invoices import engine
    from invoices.models import Invoice
    from invoices.pipeline import previous_month

    period = engine.period_for(label)
    billed = set(Invoice.objects.filter(organization_id__in=orgs[:1] + orgs[-1:]).values_list("period_start", flat=True))
    while period[0] in billed:
        period = previous_month(period[0])
    return period


def _work(args: tuple[int, list[int]]) -> int:
    """One chunk, as one `invoice_chunk_task` would bill it."""
    from invoices import engine

    run_id, org_ids = args
    statuses = engine.invoice_organizations(run_id=run_id, organization_ids=org_ids, render_pdf=False, send_email=False)
    return sum(1 for status in statuses.values() if status == "invoiced")


def _start_worker() -> None:
    connections.close_all()  # never share the parent's connection


# The month's usage by hand, as the engine reads a whole month: the daily rows grouped,
# each group's first and last hour one probe each of the hourly unique index.
_BASELINE_READ = """
SELECT d.*,
       (SELECT h.hour FROM usage_usagehourly h WHERE h.resource_id = d.resource_id AND h.product_id = d.product_id
          AND h.state = d.state AND h.price_id = d.price_id AND h.hour >= d.first_day::timestamp AT TIME ZONE 'UTC'
          AND h.hour < (d.first_day + 1)::timestamp AT TIME ZONE 'UTC' ORDER BY h.hour LIMIT 1),
       (SELECT h.hour FROM usage_usagehourly h WHERE h.resource_id = d.resource_id AND h.product_id = d.product_id
          AND h.state = d.state AND h.price_id = d.price_id AND h.hour >= d.last_day::timestamp AT TIME ZONE 'UTC'
          AND h.hour < (d.last_day + 1)::timestamp AT TIME ZONE 'UTC' ORDER BY h.hour DESC LIMIT 1)
FROM (SELECT organization_id, resource_id, product_id, state, price_id, sum(minutes), sum(amount),
             min(day) AS first_day, max(day) AS last_day FROM usage_usagedaily
      WHERE organization_id = ANY(%s) AND day >= %s AND day < %s GROUP BY 1, 2, 3, 4, 5) d
"""


def _baseline(run_id: int, chunks: list[list[int]], period: tuple[datetime, datetime]) -> float:
    """Bare SQL, chunk by chunk, each chunk committed: the usage GROUP BY by hand and
    the same rows the engine wrote, into `LIKE … INCLUDING ALL` copies of its tables."""
    start, end = period
    with connection.cursor() as cur:
        for table in COPIED:
            cur.execute(f"DROP TABLE IF EXISTS bench_{table}")
            cur.execute(f"CREATE TABLE bench_{table} (LIKE {table} INCLUDING ALL)")
        # The rows the baseline updates exist before it starts, as they do for the engine.
        cur.execute("INSERT INTO bench_credits_balance SELECT * FROM credits_balance WHERE organization_id IN "
                    "(SELECT organization_id FROM invoices_invoicerunitem WHERE run_id = %s)", [run_id])
        cur.execute("INSERT INTO bench_invoices_invoicerunitem SELECT * FROM invoices_invoicerunitem WHERE run_id = %s",
                    [run_id])
        cur.execute("DROP TABLE IF EXISTS bench_invoices_numbersequence")
        cur.execute("CREATE TABLE bench_invoices_numbersequence (LIKE invoices_numbersequence INCLUDING ALL)")
        cur.execute("INSERT INTO bench_invoices_numbersequence (series, year, last_number) VALUES ('INV', 2000, 0)")
        cur.execute("ANALYZE bench_credits_balance; ANALYZE bench_invoices_invoicerunitem")
    # The rows each chunk writes, found before the clock starts (the audit log has no index
    # on the invoice it names, so finding them is a scan that grows run after run: timed,
    # it made the baseline slower than the engine it is the floor of).
    with connection.cursor() as cur:
        for k, chunk in enumerate(chunks):
            picks = {  # for each of COPIED_ROWS, the query finding a chunk's rows
                "invoices_invoice": "SELECT i.* FROM invoices_invoice i",
                "invoices_invoiceline": "SELECT l.* FROM invoices_invoiceline l JOIN invoices_invoice i"
                                        " ON i.id = l.invoice_id",
                "credits_ledgerentry": "SELECT e.* FROM credits_ledgerentry e JOIN invoices_invoice i"
                                       " ON e.organization_id = i.organization_id AND e.reference = 'invoice:' || i.id",
                "accounts_auditlog": "SELECT a.* FROM accounts_auditlog a JOIN invoices_invoice i"
                                     " ON a.object_type = 'invoices.Invoice' AND a.object_id = i.id::text"
                                     " AND a.action = 'invoice.finalized'",
            }
            for table in COPIED_ROWS:
                cur.execute(f"DROP TABLE IF EXISTS bsrc_{table}_{k}")
                cur.execute(f"CREATE TEMP TABLE bsrc_{table}_{k} AS {picks[table]}"  # noqa: S608 - our own tables
                            " WHERE i.organization_id = ANY(%s) AND i.period_start = %s", [chunk, start])
    t0 = time.perf_counter()
    for k, chunk in enumerate(chunks):
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(_BASELINE_READ, [chunk, start.date(), end.date()])
            cur.fetchall()
            for table in COPIED_ROWS:
                cur.execute(f"INSERT INTO bench_{table} SELECT * FROM bsrc_{table}_{k}")  # noqa: S608
                if table == "invoices_invoice":
                    n = cur.rowcount
            cur.execute("UPDATE bench_credits_balance b SET amount = b.amount - e.amount, updated_at = now()"  # noqa: S608
                        f" FROM bsrc_credits_ledgerentry_{k} e WHERE e.organization_id = b.organization_id")
            cur.execute("UPDATE bench_invoices_invoicerunitem SET status = 'invoiced', attempts = attempts + 1,"
                        " updated_at = now() WHERE run_id = %s AND organization_id = ANY(%s)", [run_id, chunk])
            cur.execute("UPDATE bench_invoices_numbersequence SET last_number = last_number + %s"
                        " WHERE series = 'INV' AND year = 2000 RETURNING last_number", [n])
    seconds = time.perf_counter() - t0
    with connection.cursor() as cur:
        for table in (*COPIED, "invoices_numbersequence"):
            cur.execute(f"DROP TABLE IF EXISTS bench_{table}")
        for k in range(len(chunks)):
            for table in COPIED_ROWS:
                cur.execute(f"DROP TABLE IF EXISTS bsrc_{table}_{k}")
    return seconds


def run(options: dict, stdout) -> str:
    from invoices import engine
    from invoices.models import Invoice, InvoiceLine

    orgs = _organizations(options["orgs"])
    period = _free_month(orgs, options["period"])
    stdout.write(f"billing {period[0]:%Y-%m}")
    _build_month(orgs, period, stdout)
    with connection.cursor() as cur:  # as autovacuum leaves a month written an hour at a time
        cur.execute("VACUUM ANALYZE usage_usagehourly")
        cur.execute("VACUUM ANALYZE usage_usagedaily")

    workers = max(1, options["workers"])
    connections.close_all()
    t0 = time.perf_counter()
    run_, todo = engine.invoice_run_start(period=period, org_ids=orgs, dispatch=False)
    connections.close_all()
    chunks = engine.chunks(todo)
    work = [(run_.pk, chunk) for chunk in chunks]
    if workers == 1:
        invoiced = sum(_work(chunk) for chunk in work)
    else:
        with multiprocessing.get_context("fork").Pool(workers, initializer=_start_worker) as pool:
            invoiced = sum(pool.imap_unordered(_work, work))
    seconds = time.perf_counter() - t0
    issued = Invoice.objects.filter(organization_id__in=orgs, period_start=period[0]).exclude(status="draft")
    lines = InvoiceLine.objects.filter(invoice__in=issued).count()
    stdout.write(f"{invoiced} invoices, {lines} lines, {workers} worker process(es), "
                 f"{len(chunks)} chunks of up to {len(chunks[0]) if chunks else 0}")

    baseline = _baseline(run_.pk, chunks, period)
    _delete_month(orgs, period)
    return (f"invoicing orgs={len(orgs)} seconds={seconds:.2f} invoices_per_second={invoiced / seconds:.0f} "
            f"baseline_seconds={baseline:.2f} ratio={seconds / baseline:.2f}")
