"""A real worker killed in the middle of a task loses no work and doubles nothing.

The monthly invoice run's chunk task is sent through Redis to a real Celery worker
process (core/tests/crash_worker.py) that takes invoice numbers slowly. Once the chunk's
six drafts are stored, while its one finalizing transaction (ledger drawn, numbers being
taken) is open, the worker is killed with SIGKILL — no cleanup, its database
connection dropped mid-transaction. The message was still unacknowledged (the project's
workers acknowledge after the task), so Redis gives it to a fresh worker, which finishes
the chunk. The result must be what a run without the crash
gives: one invoice per organisation, each for its committed minimum, numbered without a
gap or a repeat.

Checked the other way round: with the worker's tasks switched to early acks, the killed
worker's message is gone and the test times out waiting for the second worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from accounts.tests.factories import OrganizationFactory
from credits.models import LedgerEntry
from invoices import engine
from invoices.models import Invoice, InvoiceRunItem
from pricing.models import Contract

ROOT = Path(__file__).resolve().parents[2]
OCTOBER = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def _start_worker(queue: str, *, slow: bool) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "billing_site.settings.test", "DATABASE_URL": _database_url(),
           "REDIS_URL": settings.REDIS_URL, "CRASH_TEST_QUEUE": queue}
    args = [sys.executable, "-m", "core.tests.crash_worker", *(["slow"] if slow else [])]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _kill(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)


def _issued() -> int:
    return Invoice.objects.filter(period_start=OCTOBER[0]).exclude(status="draft").count()


def _drafts() -> int:
    return Invoice.objects.filter(period_start=OCTOBER[0], status="draft").count()


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(180)
@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")  # send_task always sends
def test_a_worker_killed_mid_chunk_loses_no_invoice_and_doubles_none():
    from billing_site.celery import app

    orgs = [OrganizationFactory() for _ in range(6)]
    minimums = {}
    for i, org in enumerate(orgs):
        minimums[org.pk] = Decimal(100 + i)
        Contract.objects.create(organization=org, name="Commit", currency=org.currency, valid_from=OCTOBER[0],
                                committed_monthly_minimum=minimums[org.pk], note="Signed")
    run, todo = engine.invoice_run_start(period=OCTOBER, now=datetime(2026, 11, 2, tzinfo=UTC), dispatch=False)
    assert sorted(todo) == sorted(minimums)

    queue = f"crash-test-{uuid.uuid4().hex[:8]}"
    first = _start_worker(queue, slow=True)
    second = None
    try:
        app.send_task("invoices.invoice_chunk", args=[run.pk, sorted(todo)], queue=queue)
        _wait(lambda: _drafts() == len(orgs), 90, "the first worker to store the chunk's drafts")
        time.sleep(0.5)  # into the finalizing transaction, which takes the numbers for 3 s
        _kill(first)
        killed_after = _issued()
        assert killed_after < len(orgs), "the worker finished before it was killed: nothing was tested"

        second = _start_worker(queue, slow=False)
        _wait(lambda: _issued() == len(orgs), 120, "the second worker to finish the chunk")
        time.sleep(1)  # anything still to come (a duplicate) would show now
    finally:
        _kill(first)
        if second is not None:
            _kill(second)

    invoices = list(Invoice.objects.filter(period_start=OCTOBER[0]).order_by("number"))
    assert sorted(i.organization_id for i in invoices) == sorted(minimums)  # one each, none twice
    assert {i.organization_id: i.subtotal for i in invoices} == minimums
    numbers = [int(i.number.rsplit("-", 1)[1]) for i in invoices]
    assert numbers == list(range(numbers[0], numbers[0] + len(orgs)))  # no gap, no repeat
    assert set(InvoiceRunItem.objects.filter(run=run).values_list("status", flat=True)) == {"invoiced"}
    # The chunk is issued in one transaction: all of it or, killed inside it, none.
    assert killed_after == 0
    assert LedgerEntry.objects.filter(kind="invoice_settlement").count() == len(orgs)  # drawn once each
