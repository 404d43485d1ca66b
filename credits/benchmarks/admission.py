"""Runway admission over real HTTP at a steady request rate: p95 latency.

Sets up `--orgs` organisations (nine in ten prepaid with a balance and a burn rate, one
in ten postpaid with a credit limit, one in twenty with its own policy) and ten priced
products, starts gunicorn (the production server: sync workers, DEBUG off, persistent
connections) on a free loopback port, and sends `--requests` `POST /api/v1/admission`
with a platform key at `--rate` requests a second (open loop: request i is due at
start + i / rate and sent then, from `--clients` keep-alive connections), each for a
random organisation, product and quantity. Latency is from sending to the last byte of
the answer. Every answer must be 200 with a decision.

Baseline, in the same run: the reads the decision needs — the organisation, its policy,
its burn rate, its balance and the product's effective price — as bare SQL over one
connection, one round trip each, timed the same way. The last line:
`admission requests=N p95_ms=P baseline_p95_ms=B` (and the ratio).

Everything created is deleted or deactivated at the end (no superuser, no trigger off):
no ledger entry is written (balances are set directly on rows deleted afterwards).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
from datetime import timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import ApiKey, BillingMode, Organization
from accounts.services import api_key_create
from credits.models import AdmissionPolicy, Balance
from pricing.models import BillingModel, Price, PriceUnit, Product, ProductGroup, ProductKind, ResourceState
from usage.benchmarks.ingest import _start_gunicorn
from usage.models import AccrualRate

PRODUCTS = 10


def add_arguments(parser):
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--clients", type=int, default=8, help="concurrent keep-alive connections")


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * len(ordered) + 0.5)) - 1)]


def run(options: dict, stdout) -> str:
    tag = f"ba{int(time.time())}"
    rng = random.Random(7)
    orgs, products, raw_key = _setup(tag, options["orgs"], rng)
    bodies = [json.dumps({"organization": rng.choice(orgs), "product": rng.choice(products),
                          "quantity": rng.randint(1, 4)}).encode() for _ in range(options["requests"])]
    server, port = _start_gunicorn(options["workers"])
    try:
        latencies, refused, errors = _paced(bodies, port, raw_key, options["rate"], options["clients"])
        stdout.write(f"{len(bodies)} requests at {options['rate']:g}/s from {options['clients']} connections to "
                     f"{options['workers']} gunicorn workers: {len(latencies)} answered, {refused} refused, "
                     f"{len(errors)} failed (load average {os.getloadavg()[0]:.2f})\n")
        if errors:
            stdout.write(f"first error: {errors[0]}\n")
        base = _baseline(bodies, options["rate"], orgs)
    finally:
        server.terminate()
        server.wait(timeout=30)
        _cleanup(tag)
    p, b = p95(latencies) * 1000, p95(base) * 1000
    stdout.write(f"median {sorted(latencies)[len(latencies) // 2] * 1000:.2f} ms, max {max(latencies) * 1000:.2f} ms; "
                 f"baseline median {sorted(base)[len(base) // 2] * 1000:.2f} ms\n")
    return f"admission requests={len(bodies)} p95_ms={p:.2f} baseline_p95_ms={b:.2f} ratio={p / b:.2f}"


def _paced(bodies: list[bytes], port: int, raw_key: str, rate: float, clients: int):
    latencies: list[float] = []
    errors: list[str] = []
    refused = 0
    lock = threading.Lock()
    nxt = iter(range(len(bodies)))
    start = time.perf_counter() + 0.2

    def client():
        nonlocal refused
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {raw_key}", "Content-Type": "application/json"}
        while True:
            with lock:
                i = next(nxt, None)
            if i is None:
                break
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/admission", body=bodies[i], headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                errors.append(repr(exc))
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            took = time.perf_counter() - sent
            if response.status != 200:
                errors.append(f"{response.status} {data[:200]!r}")
                continue
            with lock:
                latencies.append(took)
                refused += not json.loads(data)["allowed"]
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, refused, errors


# The decision's reads, one round trip each, as bare SQL.
_READS = (
    "SELECT id, currency, billing_mode, credit_limit, is_active FROM accounts_organization WHERE id = %(org)s",
    "SELECT min_runway_hours, enforce FROM credits_admissionpolicy WHERE organization_id = %(org)s",
    "SELECT SUM(rate_per_hour) FROM usage_accrualrate WHERE organization_id = %(org)s AND currency = %(cur)s",
    "SELECT amount FROM credits_balance WHERE organization_id = %(org)s AND currency = %(cur)s",
    "SELECT id, is_active FROM pricing_product WHERE code = %(product)s",
    "SELECT rate, unit FROM pricing_effective_rate WHERE organization_id = %(org)s AND product_id = "
    "(SELECT id FROM pricing_product WHERE code = %(product)s) AND state = 'running' AND valid_from <= now() "
    "AND (valid_to IS NULL OR valid_to > now()) LIMIT 1",
)


def _baseline(bodies: list[bytes], rate: float, orgs: list[int]) -> list[float]:
    out: list[float] = []
    start = time.perf_counter()
    with connection.cursor() as cursor:
        for i, body in enumerate(bodies):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            q = json.loads(body)
            params = {"org": q["organization"], "product": q["product"], "cur": "USD"}
            t = time.perf_counter()
            for sql in _READS:
                cursor.execute(sql, params)
                cursor.fetchall()
            out.append(time.perf_counter() - t)
    return out


def _setup(tag: str, n: int, rng: random.Random) -> tuple[list[int], list[str], str]:
    now = timezone.now()
    with transaction.atomic():
        group, _ = ProductGroup.objects.get_or_create(slug="bench", defaults={"name": "Benchmark"})
        codes = []
        for k in range(PRODUCTS):
            product = Product.objects.create(code=f"{tag}-p{k}", name=f"bench {k}", group=group,
                                             kind=ProductKind.SERVER, billing_model=BillingModel.HOURLY)
            Price.objects.create(product=product, currency="USD", state=ResourceState.RUNNING, unit=PriceUnit.HOUR,
                                 amount=Decimal(rng.choice(["0.119", "0.50", "1.89", "3.20", "6.00"])),
                                 valid_from=now - timedelta(days=30))
            codes.append(product.code)
        made = Organization.objects.bulk_create([
            Organization(name=f"admission bench {tag} {i}", slug=f"{tag}-{i}", currency="USD",
                         billing_mode=BillingMode.POSTPAID if i % 10 == 0 else BillingMode.PREPAID,
                         credit_limit=Decimal(rng.choice([0, 500, 5000])) if i % 10 == 0 else Decimal(0))
            for i in range(n)])
        Balance.objects.bulk_create([
            Balance(organization=o, currency="USD",
                    amount=Decimal(rng.randint(-200, 400) if o.billing_mode == BillingMode.POSTPAID
                                   else rng.randint(0, 300)))
            for o in made])
        AccrualRate.objects.bulk_create([
            AccrualRate(chunk=o.pk % 16, organization=o, currency="USD",
                        rate_per_hour=Decimal(rng.randint(0, 4000)) / 100, minute=0) for o in made])
        AdmissionPolicy.objects.bulk_create([
            AdmissionPolicy(organization=o, min_runway_hours=Decimal(rng.choice([2, 24])), note="bench")
            for i, o in enumerate(made) if i % 20 == 1])
        _key, raw = api_key_create(name=f"{tag} platform", scopes=["admission:check"], organization=None, by=None)
    return [o.pk for o in made], codes, raw


def _cleanup(tag: str) -> None:
    with transaction.atomic():
        orgs = Organization.objects.filter(slug__startswith=f"{tag}-")
        AdmissionPolicy.objects.filter(organization__in=orgs).delete()
        AccrualRate.objects.filter(organization__in=orgs).delete()
        Balance.objects.filter(organization__in=orgs).delete()
        Price.objects.filter(product__code__startswith=f"{tag}-").delete()
        Product.objects.filter(code__startswith=f"{tag}-").delete()
        ApiKey.objects.filter(name=f"{tag} platform").update(revoked_at=timezone.now())
        orgs.delete()
