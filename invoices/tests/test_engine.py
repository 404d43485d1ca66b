"""The scheduled engine: idempotent, late-safe, and one failure never stops the others."""

from decimal import Decimal

import pytest

from accounts.models import BillingMode
from accounts.tests.factories import OrganizationFactory
from core.errors import DomainError
from invoices import engine
from invoices.models import Invoice, InvoiceRun, InvoiceRunItem
from invoices.pipeline import step
from invoices.tests.helpers import hourly_rows, utc

pytestmark = pytest.mark.django_db
OCT = engine.period_for("2026-10")


@pytest.fixture
def three_orgs(fixture_pipeline, ledger):
    orgs = [OrganizationFactory(billing_mode=BillingMode.POSTPAID) for _ in range(3)]
    for org in orgs:
        fixture_pipeline[org.pk] = {"usage": hourly_rows(start=utc(2026, 10, 5), end=utc(2026, 10, 6), rate="1.00")}
        ledger.draw(org, Decimal("24.00"))
    OrganizationFactory()  # nothing to bill: never examined
    return orgs


def run(now=None, org_ids=None):
    now = now or utc(2026, 11, 1, 2)
    the_run, todo = engine.invoice_run_start(now=now, org_ids=org_ids, dispatch=False)
    for org_id in todo:
        try:
            engine.invoice_organization(run_id=the_run.pk, organization_id=org_id, render_pdf=False, send_email=False, now=now)
        except RuntimeError as exc:
            print("FAILED", org_id, exc)
    return the_run, todo


def test_running_the_month_twice_gives_one_invoice_per_organisation(three_orgs):
    run()
    numbers = set(Invoice.objects.values_list("number", flat=True))
    _, todo = run()
    assert todo == []
    assert Invoice.objects.count() == 3
    assert set(Invoice.objects.values_list("number", flat=True)) == numbers
    assert InvoiceRun.objects.get().status == "done"


def test_a_run_days_late_bills_the_month_that_closed(three_orgs):
    the_run, _ = run(now=utc(2026, 11, 9, 17))
    assert (the_run.period_start, the_run.period_end) == OCT
    assert set(Invoice.objects.values_list("period_start", flat=True)) == {OCT[0]}


def test_a_month_that_has_not_closed_is_refused(three_orgs):
    with pytest.raises(DomainError):
        engine.invoice_run_start(period=engine.period_for("2026-11"), now=utc(2026, 11, 20), dispatch=False)


def test_a_failing_organisation_is_recorded_and_retried_without_stopping_the_others(three_orgs, settings):
    bad = three_orgs[1]
    settings.BILLING_PIPELINES = {
        **settings.BILLING_PIPELINES,
        "scheduled": ["invoices.tests.test_engine.explode_for_marked", *settings.BILLING_PIPELINES["scheduled"]],
    }
    FAILING.add(bad.pk)
    the_run, _ = run()
    item = InvoiceRunItem.objects.get(run=the_run, organization=bad)
    assert (item.status, item.attempts) == ("failed", 1)
    assert "disk on fire" in item.last_error
    assert set(Invoice.objects.values_list("organization_id", flat=True)) == {three_orgs[0].pk, three_orgs[2].pk}
    assert InvoiceRun.objects.get().status == "failed"

    FAILING.clear()
    _, todo = run()
    assert todo == [bad.pk]
    item.refresh_from_db()
    assert (item.status, item.attempts) == ("invoiced", 2)
    assert Invoice.objects.count() == 3
    assert InvoiceRun.objects.get().status == "done"


def test_a_crash_between_storing_and_numbering_is_finished_by_the_rerun(three_orgs, monkeypatch):
    from invoices import services

    real = services.invoices_finalize
    calls = {"n": 0}

    def crash_on_second(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        return real(**kwargs)

    monkeypatch.setattr(services, "invoices_finalize", crash_on_second)
    run()
    assert sorted(Invoice.objects.values_list("status", flat=True)) == ["draft", "open", "open"]
    monkeypatch.setattr(services, "invoices_finalize", real)
    run()
    assert sorted(Invoice.objects.values_list("status", flat=True)) == ["open", "open", "open"]
    assert sorted(Invoice.objects.values_list("number", flat=True)) == [f"INV-2026-00000{n}" for n in (1, 2, 3)]
    assert {inv.total for inv in Invoice.objects.all()} == {Decimal("24.00")}


FAILING: set[int] = set()


@step()
def explode_for_marked(ctx):
    if set(ctx.organization_ids) & FAILING:
        raise RuntimeError("disk on fire")


def test_a_chunk_bills_each_organisation_and_records_a_failing_one_alone(three_orgs, monkeypatch):
    from invoices.services import lifecycle

    bad = three_orgs[1]
    real = lifecycle.billing_snapshot

    def fail_for_bad(org):
        if org.pk == bad.pk:
            raise RuntimeError("numbering unavailable")
        return real(org)

    # The chunk's one finalizing transaction fails on the bad organisation and rolls
    # back whole; the chunk is then finalized one by one.
    monkeypatch.setattr(lifecycle, "billing_snapshot", fail_for_bad)
    the_run, todo = engine.invoice_run_start(now=utc(2026, 11, 1, 2), dispatch=False)
    statuses = engine.invoice_organizations(run_id=the_run.pk, organization_ids=todo, render_pdf=False, send_email=False)
    assert statuses == {three_orgs[0].pk: "invoiced", bad.pk: "failed", three_orgs[2].pk: "invoiced"}
    item = InvoiceRunItem.objects.get(run=the_run, organization=bad)
    assert (item.status, item.attempts, item.last_error) == ("failed", 1, "RuntimeError: numbering unavailable")
    issued = Invoice.objects.exclude(status="draft")
    assert sorted(issued.values_list("number", flat=True)) == ["INV-2026-000001", "INV-2026-000002"]
    assert set(InvoiceRunItem.objects.filter(status="invoiced").values_list("invoice_id", flat=True)) == set(
        issued.values_list("pk", flat=True))

    monkeypatch.setattr(lifecycle, "billing_snapshot", real)
    assert engine.invoice_organization(run_id=the_run.pk, organization_id=bad.pk, render_pdf=False, send_email=False) == "invoiced"
    assert Invoice.objects.get(organization=bad).number == "INV-2026-000003"
    assert InvoiceRun.objects.get().status == "done"


def test_the_fan_out_sends_chunks_and_retries_a_failed_organisation_on_its_own(
    three_orgs, settings, django_capture_on_commit_callbacks
):
    settings.INVOICE_RUN_CHUNK_SIZE = 2
    settings.BILLING_PIPELINES = {
        **settings.BILLING_PIPELINES,
        "scheduled": ["invoices.tests.test_engine.explode_a_few_times_for_marked", *settings.BILLING_PIPELINES["scheduled"]],
    }
    # Fails its chunk, then again alone; the retry task then bills it.
    FAILURES_LEFT[three_orgs[0].pk] = 2
    # Eager Celery: the chunks run at commit, and the retry of the failed one at once.
    with django_capture_on_commit_callbacks(execute=True):
        the_run, todo = engine.invoice_run_start(now=utc(2026, 11, 1, 2))
    assert engine.chunks(todo) == [[three_orgs[0].pk, three_orgs[1].pk], [three_orgs[2].pk]]
    items = InvoiceRunItem.objects.filter(run=the_run).order_by("organization_id")
    assert list(items.values_list("status", "attempts")) == [("invoiced", 2), ("invoiced", 1), ("invoiced", 1)]
    assert Invoice.objects.exclude(status="draft").count() == 3
    assert InvoiceRun.objects.get().status == "done"


FAILURES_LEFT: dict[int, int] = {}


@step()
def explode_a_few_times_for_marked(ctx):
    for org_id in ctx.organization_ids:
        if FAILURES_LEFT.get(org_id):
            FAILURES_LEFT[org_id] -= 1
            raise RuntimeError("connection reset")
