"""Invoices in bulk: a chunk is written in a few multi-row statements and numbered in
ONE counter update, gapless under concurrency and rollback, with the ledger drawn
before the counter is locked; one bad organisation never sinks its chunk; a rerun
changes nothing twice."""

import threading
import time
from datetime import date
from decimal import Decimal

import pytest
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditLog, BillingMode
from accounts.tests.factories import OrganizationFactory
from core.tests.concurrency import run_second_while_first_holds
from credits.models import LedgerEntry
from invoices import engine, numbering, services
from invoices.models import Invoice, InvoiceLine, InvoiceRunItem, NumberSequence, TaxRate
from invoices.pipeline import step
from invoices.services import lifecycle
from invoices.tests.factories import make_invoice
from invoices.tests.helpers import hourly_rows, utc

NOV_RUN = utc(2026, 11, 1, 2)


@pytest.fixture
def taxed_orgs(fixture_pipeline, ledger):
    """Four postpaid German organisations with a day of usage: taxed at 19 %, so
    finalizing draws the tax from each one's ledger (metering drew the usage)."""
    TaxRate.objects.create(country="DE", rate=Decimal("19"), valid_from=date(2020, 1, 1))
    orgs = [OrganizationFactory(billing_mode=BillingMode.POSTPAID, country="DE", vat_id="") for _ in range(4)]
    for org in orgs:
        fixture_pipeline[org.pk] = {"usage": hourly_rows(start=utc(2026, 10, 5), end=utc(2026, 10, 6), rate="1.00")}
        ledger.draw(org, Decimal("24.00"))
    return orgs


def bill_chunk(org_ids=None):
    the_run, todo = engine.invoice_run_start(now=NOV_RUN, org_ids=org_ids, dispatch=False)
    statuses = engine.invoice_organizations(run_id=the_run.pk, organization_ids=todo, render_pdf=False,
                                            send_email=False, now=NOV_RUN)
    return the_run, statuses


def statements(queries, *, verb, table):
    """The statements writing `table`: an INSERT is an `INSERT INTO` or a `COPY` (core.copyrows)."""
    starts = (f'INSERT INTO "{table}"', f'COPY "{table}"') if verb == "INSERT" else (f'UPDATE "{table}"',)
    return [q["sql"] for q in queries if q["sql"].startswith(starts)]


@pytest.mark.django_db
def test_a_chunk_is_written_in_a_few_multi_row_statements_and_numbered_in_one_counter_update(taxed_orgs):
    # The year's counter exists (its first document creates it, then updates it).
    NumberSequence.objects.create(series=numbering.INVOICE_SERIES, year=2026, last_number=0)
    with CaptureQueriesContext(connection) as ctx:
        _, statuses = bill_chunk()
    assert set(statuses.values()) == {"invoiced"}
    q = ctx.captured_queries
    counter = [s for s in q if "invoices_numbersequence" in s["sql"] and s["sql"].startswith("UPDATE")]
    assert len(counter) == 1  # the whole chunk's numbers at once
    assert len(statements(q, verb="INSERT", table="invoices_invoice")) == 1
    assert len(statements(q, verb="INSERT", table="invoices_invoiceline")) == 1
    assert len(statements(q, verb="INSERT", table="credits_ledgerentry")) == 1
    assert len(statements(q, verb="INSERT", table="accounts_auditlog")) == 1
    assert len(statements(q, verb="UPDATE", table="invoices_invoice")) == 1  # numbers, snapshots, dates
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 5)]
    # Organisation order is number order, and each invoice drew its tax once.
    by_org = dict(Invoice.objects.values_list("organization_id", "number"))
    assert [by_org[o.pk] for o in taxed_orgs] == numbers
    for inv in Invoice.objects.all():
        assert inv.tax_total == Decimal("4.56")
        entry = LedgerEntry.objects.get(reference=f"invoice:{inv.pk}")
        assert (entry.kind, entry.amount) == ("invoice_settlement", Decimal("-4.56"))
        assert entry.balance_after == Decimal("-28.56")


@pytest.mark.django_db
def test_a_rerun_of_the_chunk_changes_nothing_twice(taxed_orgs):
    the_run, _ = bill_chunk()
    before = (
        sorted(Invoice.objects.values_list("organization_id", "number", "status", "total")),
        LedgerEntry.objects.count(), AuditLog.objects.filter(action="invoice.finalized").count(),
        InvoiceLine.objects.count(), NumberSequence.objects.get().last_number,
    )
    # The chunk's task delivered again (a worker lost after its commit).
    statuses = engine.invoice_organizations(run_id=the_run.pk, organization_ids=[o.pk for o in taxed_orgs],
                                            render_pdf=False, send_email=False, now=NOV_RUN)
    assert set(statuses.values()) == {"invoiced"}
    after = (
        sorted(Invoice.objects.values_list("organization_id", "number", "status", "total")),
        LedgerEntry.objects.count(), AuditLog.objects.filter(action="invoice.finalized").count(),
        InvoiceLine.objects.count(), NumberSequence.objects.get().last_number,
    )
    assert after == before
    assert set(InvoiceRunItem.objects.filter(run=the_run).values_list("status", flat=True)) == {"invoiced"}


@pytest.mark.django_db
def test_a_crash_after_storing_the_chunk_is_finished_once_by_the_rerun(taxed_orgs, monkeypatch):
    """The worker dies between the drafts' commit and the numbering: nothing is issued,
    nothing drawn, and the rerun rebuilds and issues each draft once."""
    real = services.invoices_finalize

    def killed(**kwargs):
        raise SystemExit("worker killed")  # not an Exception: nothing catches it

    monkeypatch.setattr(services, "invoices_finalize", killed)
    with pytest.raises(SystemExit):
        bill_chunk()
    assert list(Invoice.objects.values_list("status", flat=True)) == ["draft"] * 4
    assert not LedgerEntry.objects.filter(kind="invoice_settlement").exists()
    monkeypatch.setattr(services, "invoices_finalize", real)
    _, statuses = bill_chunk()
    assert set(statuses.values()) == {"invoiced"}
    assert sorted(Invoice.objects.values_list("number", flat=True)) == [f"INV-2026-{n:06d}" for n in range(1, 5)]
    assert LedgerEntry.objects.filter(kind="invoice_settlement").count() == 4


BROKEN: set[int] = set()


@step(requires={"balance"}, provides={"balance"})
def break_marked(ctx):
    """A line no numeric column can hold, for the marked organisations only."""
    for org_id in BROKEN & set(ctx.bills):
        ctx.bills[org_id].lines[0].quantity = Decimal("1e40")


@pytest.mark.django_db
def test_one_bad_organisation_never_sinks_its_chunk(taxed_orgs, settings):
    bad = taxed_orgs[2]
    steps = list(settings.BILLING_PIPELINES["scheduled"])
    steps.insert(steps.index("invoices.handlers.finalize.Finalize"), "invoices.tests.test_bulk.break_marked")
    settings.BILLING_PIPELINES = {**settings.BILLING_PIPELINES, "scheduled": steps}
    BROKEN.add(bad.pk)
    try:
        the_run, statuses = bill_chunk()
    finally:
        BROKEN.clear()
    assert statuses[bad.pk] == "failed"
    assert {o: s for o, s in statuses.items() if o != bad.pk} == {o.pk: "invoiced" for o in taxed_orgs if o != bad}
    item = InvoiceRunItem.objects.get(run=the_run, organization=bad)
    assert "numeric field overflow" in item.last_error
    assert not Invoice.objects.filter(organization=bad).exists()
    assert sorted(Invoice.objects.values_list("number", flat=True)) == [f"INV-2026-{n:06d}" for n in range(1, 4)]


@pytest.mark.django_db(transaction=True)
def test_the_numbering_lock_is_not_held_during_the_ledger_post(taxed_orgs, monkeypatch):
    """While one session draws a chunk's invoices from the ledger, another can take the
    counter row at once (NOWAIT): the counter is locked only after the draw."""
    NumberSequence.objects.create(series=numbering.INVOICE_SERIES, year=2026, last_number=0)
    held, probed = threading.Event(), threading.Event()
    drafts = [make_invoice(org, amounts=("10.00",), year=2026, month=10, finalize=False) for org in taxed_orgs]

    def slow_draw(real):
        def draw(*args, **kwargs):
            held.set()
            probed.wait(10)
            return real(*args, **kwargs)
        return draw

    # Whichever the finalizing code calls (one post per invoice, or one for the chunk).
    for name in ("ledger_post", "ledger_post_many"):
        if hasattr(lifecycle, name):
            monkeypatch.setattr(lifecycle, name, slow_draw(getattr(lifecycle, name)))

    def probe():
        try:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute("SELECT last_number FROM invoices_numbersequence WHERE series = 'INV' AND year = 2026 "
                            "FOR UPDATE NOWAIT")
        finally:
            probed.set()

    errors = run_second_while_first_holds(
        lambda: services.invoices_finalize(invoices=drafts, render_pdf=False, now=NOV_RUN)
        if hasattr(services, "invoices_finalize") else
        [services.invoice_finalize(invoice=d, render_pdf=False, now=NOV_RUN) for d in drafts],
        probe, held,
    )
    assert errors == []
    assert Invoice.objects.exclude(number=None).count() == 4


@pytest.mark.django_db(transaction=True)
def test_two_sessions_numbering_at_once_leave_no_gap_when_one_rolls_back(monkeypatch):
    """Session A takes three numbers and, still holding the counter, rolls back;
    session B, queued on the counter meanwhile, gets the same three numbers; A's
    invoices are numbered after. No number is skipped or used twice."""
    orgs = [OrganizationFactory(billing_mode=BillingMode.POSTPAID) for _ in range(6)]
    drafts = [make_invoice(org, finalize=False) for org in orgs]
    first, second = drafts[:3], drafts[3:]
    real = numbering.next_numbers
    held = threading.Event()

    def take_then_crash(series, year, count):
        numbers = real(series, year, count)
        if threading.current_thread().name == "A":
            held.set()
            time.sleep(1.0)  # B is waiting on the counter row by now
            raise OperationalError("connection lost")
        return numbers

    monkeypatch.setattr(numbering, "next_numbers", take_then_crash)
    errors: list[BaseException] = []

    def finalize(batch):
        try:
            services.invoices_finalize(invoices=batch, render_pdf=False, now=NOV_RUN)
        except BaseException as exc:  # noqa: BLE001 - checked below
            errors.append(exc)
        finally:
            connection.close()

    a = threading.Thread(target=finalize, args=(first,), name="A")
    b = threading.Thread(target=finalize, args=(second,), name="B")
    a.start()
    held.wait(10)
    b.start()
    a.join(30)
    b.join(30)
    assert [type(e) for e in errors] == [OperationalError]
    numbers = dict(Invoice.objects.values_list("pk", "number"))
    assert [numbers[d.pk] for d in second] == ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003"]
    assert all(numbers[d.pk] is None for d in first)
    services.invoices_finalize(invoices=first, render_pdf=False, now=NOV_RUN)
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 7)]


@pytest.mark.django_db(transaction=True)
def test_two_workers_invoicing_the_same_chunk_at_once_issue_one_invoice_each(taxed_orgs):
    """A redelivered chunk running beside the first: the unique (organisation, period)
    sends the loser to the one-by-one path, which finds the winner's invoices."""
    the_run, todo = engine.invoice_run_start(now=NOV_RUN, dispatch=False)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work():
        try:
            barrier.wait()
            engine.invoice_organizations(run_id=the_run.pk, organization_ids=todo, render_pdf=False,
                                         send_email=False, now=NOV_RUN)
        except BaseException as exc:  # noqa: BLE001 - checked below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(Invoice.objects.values_list("organization_id", flat=True)) == sorted(o.pk for o in taxed_orgs)
    assert sorted(Invoice.objects.values_list("number", flat=True)) == [f"INV-2026-{n:06d}" for n in range(1, 5)]
    assert LedgerEntry.objects.filter(kind="invoice_settlement").count() == 4


@pytest.mark.django_db
def test_the_queries_of_a_chunk_do_not_grow_with_its_organisations():
    """Billed from real hourly and daily rollups (the benchmark's realistic month: ten
    resources each, a price change, a hibernation, a third prepaid, a coupon for every
    fifth, four tax treatments), a chunk of 12 costs the statements a chunk of 4 costs.
    (The first chunk of a year also creates the year's counter row: it runs first.)"""
    from invoices.benchmarks import invoicing as bench

    orgs = bench._organizations(18)
    period = engine.period_for("2025-02")
    bench._build_month(orgs, period, stdout=type("Quiet", (), {"write": staticmethod(lambda *a: None)})())
    the_run, todo = engine.invoice_run_start(period=period, org_ids=orgs, now=NOV_RUN, dispatch=False)
    counts = {}
    for chunk in (todo[:2], todo[2:6], todo[6:]):
        with CaptureQueriesContext(connection) as ctx:
            statuses = engine.invoice_organizations(run_id=the_run.pk, organization_ids=chunk, render_pdf=False,
                                                    send_email=False, now=NOV_RUN)
        assert list(statuses.values()) == ["invoiced"] * len(chunk)
        counts[len(chunk)] = len(ctx.captured_queries)
    assert counts[12] == counts[4], counts
    assert InvoiceLine.objects.filter(invoice__organization_id__in=orgs).count() >= 18 * 12
