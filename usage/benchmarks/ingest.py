"""Event ingestion over real HTTP, against PostgreSQL COPY of the same rows.

Starts gunicorn serving the app (the production server: sync workers, `--workers`,
DEBUG off, persistent database connections) on a free loopback port, and posts
`--events` events in batches of 1,000 from `--clients` concurrent connections. Half the
events are duplicates of earlier ones (each batch: 500 new, 500 sent before). Nine in
ten are metered quantities (bandwidth samples), one in ten a lifecycle event (stopped /
started) of one of `--resources` servers, as the platform sends them. Batch bodies are
encoded before the clock starts; the clock covers sending, the server's work and
reading every response. The result must be exact: every unique event accepted once,
every duplicate reported as such.

Baseline, in the same run: the same writes with nothing else, `COPY … FROM STDIN` in
1,000-row batches, each committed, into real (not temporary) twins of the tables, made
`LIKE … INCLUDING ALL` (the same columns, primary keys and indexes) and partitioned the
same way: the events as they were stored (the accepted ones, with their ids) into a
twin of `usage_usageevent` with a partition for each day they fall in, and their two
dedup keys each into a twin of `usage_eventkey`. `baseline_rows_per_second` counts event
rows (their keys are in the time); `ratio` is the HTTP figure over it.

Everything the benchmark created is deleted or dropped at the end, as the tables' owner:
no superuser, no trigger disabled.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from accounts.models import ApiKey, Organization
from accounts.scopes import PLATFORM_SCOPES
from accounts.services import api_key_create
from pricing.models import BillingModel, Price, PriceUnit, Product, ProductGroup, ProductKind, ResourceState
from usage import event_partitions
from usage.models import AddonAttachment, Metric, Recheck, Resource, StateInterval, UsageEvent, to_minute
from usage.models.events import dedup_bucket

BATCH = 1000
NULL = "\\N"  # COPY text format


def add_arguments(parser):
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--resources", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--clients", type=int, default=3, help="concurrent client connections")


def run(options: dict, stdout) -> str:
    total = options["events"] - options["events"] % BATCH
    tag = f"bi{int(time.time())}"
    org, raw_key = _setup(tag, options["resources"])
    bodies, unique = _batches(tag, org.pk, total, options["resources"])
    server, port = _start_gunicorn(options["workers"])
    try:
        accepted = duplicates = rejected = 0
        jobs: queue.Queue = queue.Queue()
        for body in bodies:
            jobs.put(body)
        results: list = []
        errors: list = []

        def client():
            while True:
                try:
                    body = jobs.get_nowait()
                except queue.Empty:
                    return
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                    conn.request("POST", "/api/v1/events", body=body, headers={
                        "Authorization": f"Bearer {raw_key}", "Content-Type": "application/json"})
                    response = conn.getresponse()
                    data = response.read()
                    conn.close()
                    if response.status != 200:
                        errors.append(f"{response.status} {data[:300]!r}")
                    else:
                        results.append(json.loads(data))
                except Exception as exc:  # noqa: BLE001 - reported below
                    errors.append(repr(exc))

        threads = [threading.Thread(target=client) for _ in range(options["clients"])]
        started, client_cpu = time.perf_counter(), time.process_time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
        client_cpu = time.process_time() - client_cpu
        for r in results:
            accepted += r["accepted"]
            duplicates += r["duplicates"]
            rejected += r["rejected"]
        stdout.write(f"posted {total} events in {len(bodies)} batches with {options['clients']} clients to "
                     f"{options['workers']} gunicorn workers: {accepted} accepted, {duplicates} duplicate, "
                     f"{rejected} rejected, {len(errors)} failed requests, {seconds:.2f}s "
                     f"(client CPU {client_cpu:.2f}s, load average {os.getloadavg()[0]:.2f})\n")
        if errors:
            stdout.write(f"first error: {errors[0]}\n")
        if (accepted, duplicates) != (unique, total - unique):
            stdout.write(f"MISMATCH: expected {unique} accepted and {total - unique} duplicates\n")
        copy_rate = _baseline_copy(org.pk)
    finally:
        server.terminate()
        server.wait(timeout=30)
        _cleanup(tag, org)
    rate = total / seconds
    return (f"ingest events={total} events_per_second={rate:.0f} baseline_rows_per_second={copy_rate:.0f} "
            f"ratio={rate / copy_rate:.3f}")


def _setup(tag: str, resources: int):
    now = timezone.now()
    event_partitions.ensure_event_partitions()  # what the hourly retention task keeps ready
    with transaction.atomic():
        org = Organization.objects.create(name=f"ingest benchmark {tag}", slug=tag, currency="USD")
        group, _ = ProductGroup.objects.get_or_create(slug="bench", defaults={"name": "Benchmark"})
        product = Product.objects.create(code=f"{tag}-cpu", name="bench cpu", group=group, kind=ProductKind.SERVER,
                                         billing_model=BillingModel.HOURLY)
        Price.objects.create(product=product, currency="USD", state=ResourceState.RUNNING, unit=PriceUnit.HOUR,
                             amount=Decimal("0.119"), valid_from=now - timedelta(days=2))
        bandwidth = Product.objects.create(code=f"{tag}-bw", name="bench bandwidth", group=group,
                                           kind=ProductKind.BANDWIDTH, billing_model=BillingModel.OVERAGE)
        Metric.objects.create(code=f"{tag}-bw", name="bench bandwidth", unit="GB", product=bandwidth)
        since = now - timedelta(days=1, hours=1)
        with connection.cursor() as cursor:
            cursor.execute("""
                INSERT INTO usage_resource (organization_id, external_id, kind, name, product_id, state, state_since,
                                            created_at)
                SELECT %(org)s, %(tag)s || '-' || g, 'server', 'bench ' || g, %(product)s, 'running', %(since)s, now()
                FROM generate_series(0, %(n)s - 1) AS g
            """, {"org": org.pk, "tag": tag, "product": product.pk, "since": since, "n": resources})
            cursor.execute("""
                INSERT INTO usage_stateinterval (resource_id, organization_id, started_at, start_minute, state,
                                                 product_id, eff_state, eff_product_id, source, reason, recorded_at)
                SELECT id, organization_id, %(since)s, %(m)s, 'running', product_id, 'running', product_id, 'event',
                       '', now()
                FROM usage_resource WHERE organization_id = %(org)s
            """, {"org": org.pk, "since": since, "m": to_minute(since)})
        _key, raw = api_key_create(name=f"{tag} platform", scopes=sorted(PLATFORM_SCOPES), organization=None,
                                   by=None)
    return org, raw


def _batches(tag: str, org_id: int, total: int, resources: int) -> tuple[list[bytes], int]:
    """Batches of 500 new events and 500 sent before (the first repeats its own)."""
    base = timezone.now() - timedelta(days=1)
    fresh: list[dict] = []
    sent: list[dict] = []
    n_new = total // 2
    for i in range(n_new):
        r = i % resources
        when = (base + timedelta(milliseconds=i * 300)).isoformat()
        if i % 10 == 0:
            kind = "stopped" if (i // resources) % 2 == 0 else "started"
            fresh.append({"id": f"{tag}-{i}", "type": kind, "resource": f"{tag}-{r}", "timestamp": when})
        else:
            fresh.append({"id": f"{tag}-{i}", "type": "metered", "resource": f"{tag}-{r}", "timestamp": when,
                          "metric": f"{tag}-bw", "quantity": str(Decimal(i % 977) / 100)})
    bodies = []
    stride = 7919  # a prime: repeats are spread over everything sent so far
    for b in range(total // BATCH):
        new = fresh[b * (BATCH // 2):(b + 1) * (BATCH // 2)]
        pool = sent + new
        repeats = [pool[(b * BATCH + k * stride) % len(pool)] for k in range(BATCH // 2)] if sent else list(new)
        sent.extend(new)
        batch = new + repeats
        bodies.append(json.dumps({"events": batch}).encode())
    # A repeat drawn from the batch's own new events is a duplicate inside the batch: still a duplicate.
    return bodies, n_new


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database_url() -> str:
    """This process's database (in a test run, the test database), for the workers."""
    db = connections["default"].settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def _start_gunicorn(workers: int) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "billing_site.settings.local",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": _database_url(),
        "DATABASE_CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
    }
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "billing_site.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--preload", "--log-level", "warning", "--timeout", "120"],
        cwd=str(settings.BASE_DIR), env=env,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return server, port
        except OSError:
            time.sleep(0.3)
    server.terminate()
    raise RuntimeError("gunicorn did not start within 60 seconds")


BASELINE_EVENTS, BASELINE_KEYS = "bench_ingest_events", "bench_ingest_eventkey"


def _baseline_copy(org_id: int) -> float:
    """COPY the stored events (as stored) and their dedup keys into real twins of the tables,
    1,000 events a committed transaction, as the API's batches are; event rows per second."""
    bucket = dedup_bucket(timezone.now())
    columns = event_partitions.COLUMNS
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM usage_usageevent WHERE organization_id = %s "  # noqa: S608
                       "ORDER BY received_at, id", [org_id])
        stored = cursor.fetchall()
        days = sorted({row[3].date() for row in stored})
        _drop_baseline(cursor)
        cursor.execute(f"CREATE TABLE {BASELINE_EVENTS} (LIKE usage_usageevent INCLUDING ALL) "
                       "PARTITION BY RANGE (occurred_at)")
        cursor.execute(f"CREATE TABLE {BASELINE_EVENTS}_default PARTITION OF {BASELINE_EVENTS} DEFAULT")
        for day in days:
            lo, hi = event_partitions.day_start(day), event_partitions.day_start(day + timedelta(days=1))
            cursor.execute(f"CREATE TABLE {BASELINE_EVENTS}_p{day:%Y%m%d} PARTITION OF {BASELINE_EVENTS} "
                           f"FOR VALUES FROM ('{lo}') TO ('{hi}')")
        cursor.execute(f"CREATE TABLE {BASELINE_KEYS} (LIKE usage_eventkey INCLUDING ALL) PARTITION BY RANGE (bucket)")
        for b in (bucket, bucket + 1):
            cursor.execute(f"CREATE TABLE {BASELINE_KEYS}_b{b} PARTITION OF {BASELINE_KEYS} "
                           f"FOR VALUES FROM ({b}) TO ({b + 1})")
    batches = []
    for start in range(0, len(stored), BATCH // 2):
        events, keys = io.StringIO(), io.StringIO()
        for row in stored[start:start + BATCH // 2]:
            events.write("\t".join(NULL if v is None else v.isoformat() if hasattr(v, "isoformat") else str(v)
                                   for v in row) + "\n")
            digest = _md5_uuid(row[1])
            keys.write(f"{digest}\t{bucket}\n{digest}\t{bucket + 1}\n")
        batches.append((events, keys))
    started = time.perf_counter()
    for events, keys in batches:
        events.seek(0)
        keys.seek(0)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.copy_expert(f"COPY {BASELINE_KEYS} (digest, bucket) FROM STDIN WITH (FORMAT text)", keys)
            cursor.copy_expert(f"COPY {BASELINE_EVENTS} ({', '.join(columns)}) FROM STDIN WITH (FORMAT text)",
                               events)
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        _drop_baseline(cursor)
    return len(stored) / seconds


def _md5_uuid(text: str) -> str:
    """PostgreSQL's `md5(text)::uuid`, as ingestion writes the key."""
    return str(uuid.UUID(hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()))


def _drop_baseline(cursor) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {BASELINE_EVENTS}, {BASELINE_KEYS}")


def _cleanup(tag: str, org) -> None:
    with transaction.atomic():
        resources = Resource.objects.filter(organization=org)
        Recheck.objects.filter(organization=org).delete()
        StateInterval.objects.filter(organization=org).delete()
        AddonAttachment.objects.filter(organization=org).delete()
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM usage_eventkey WHERE digest IN (SELECT md5(event_id)::uuid FROM "
                           "usage_usageevent WHERE organization_id = %s)", [org.pk])
        UsageEvent.objects.filter(organization=org).delete()
        resources.delete()
        Metric.objects.filter(code=f"{tag}-bw").delete()
        Price.objects.filter(product__code__startswith=f"{tag}-").delete()
        Product.objects.filter(code__startswith=f"{tag}-").delete()
        ApiKey.objects.filter(name=f"{tag} platform").update(revoked_at=timezone.now())
        org.is_active = False
        org.save(update_fields=["is_active"])
