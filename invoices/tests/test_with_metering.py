"""The whole chain on real tables: lifecycle events → per-minute metering → hourly
rollups → the monthly invoice (and the interim one), read through `invoices.sources`."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from accounts.models import BillingMode
from accounts.tests.factories import OrganizationFactory
from credits.sync import sync_pending
from invoices import engine
from invoices.models import Invoice
from invoices.tests.helpers import utc
from pricing.models import BillingModel, ProductKind, ResourceState
from pricing.tests.factories import ProductFactory
from usage import metering, services
from usage.ingest import events_ingest
from usage.models import Metric, StateSource
from usage.rollups import rollup_pending
from usage.tests.factories import add_price

pytestmark = pytest.mark.django_db
LONG_AGO = utc(2025, 1, 1)


def meter_and_roll_up(until):
    """Meter, roll up, and settle the credit ledger (credits' sync, which runs after each
    metering commit in production)."""
    with time_machine.travel(until + timedelta(minutes=5), tick=False):
        metering.meter_pass(until=until)
        rollup_pending()
        while sync_pending():
            pass


def change(resource, state, at):
    return services.resource_change_state(resource=resource, state=state, at=at, source=StateSource.EVENT)


@pytest.fixture
def october(settings):
    """web-1 runs cpu-4 from 1 Oct at 2.00/h, 2.50/h from 15 Oct (a price change), is
    resized to cpu-8 (4.00/h) at 20 Oct 12:30, hibernated (0.10/h) from 25 Oct; the org
    sends 1,200 GB of bandwidth with 1,000 GB included at 0.01/GB."""
    settings.USAGE_METERING_CHUNKS = 1
    org = OrganizationFactory(billing_mode=BillingMode.POSTPAID, country="US", currency="USD")
    cpu4 = ProductFactory(code="cpu-4", name="CPU 4 vCPU")
    cpu8 = ProductFactory(code="cpu-8", name="CPU 8 vCPU")
    add_price(cpu4, "2.00", valid_from=LONG_AGO, valid_to=utc(2026, 10, 15))
    add_price(cpu4, "2.50", valid_from=utc(2026, 10, 15))
    add_price(cpu8, "4.00", valid_from=LONG_AGO)
    add_price(cpu8, "0.10", valid_from=LONG_AGO, state=ResourceState.HIBERNATED)
    bandwidth = ProductFactory(code="bandwidth", name="Bandwidth", kind=ProductKind.BANDWIDTH,
                               billing_model=BillingModel.OVERAGE, unit_label="GB")
    price = add_price(bandwidth, "0.01", valid_from=LONG_AGO, unit="gb")
    price.included_quantity = Decimal(1000)
    price.save()
    Metric.objects.create(code="bandwidth_gb", name="Bandwidth", unit="GB", aggregation="sum", product=bandwidth)

    # Each event is sent as it happens (usage refuses events older than a week).
    with time_machine.travel(utc(2026, 10, 1, 0, 1), tick=False):
        server = services.resource_create(organization=org, external_id="web-1", name="web-1", product=cpu4,
                                          at=utc(2026, 10, 1), source=StateSource.EVENT)
        change(server, ResourceState.RUNNING, utc(2026, 10, 1))
    with time_machine.travel(utc(2026, 10, 20, 12, 31), tick=False):
        services.resource_resize(resource=server, product=cpu8, at=utc(2026, 10, 20, 12, 30))
    with time_machine.travel(utc(2026, 10, 25, 0, 1), tick=False):
        change(server, ResourceState.HIBERNATED, utc(2026, 10, 25))
    for i, (at, gb) in enumerate([(utc(2026, 10, 3), "600"), (utc(2026, 10, 28), "600")]):
        with time_machine.travel(at + timedelta(minutes=1), tick=False):
            result = events_ingest(items=[{"id": f"bw-{i}", "type": "metered", "resource": "web-1",
                                           "metric": "bandwidth_gb", "quantity": gb, "timestamp": at.isoformat()}])
    assert result is not None
    return org


def test_a_metered_month_produces_exactly_the_expected_lines_and_totals(october):
    meter_and_roll_up(utc(2026, 11, 1))
    run, todo = engine.invoice_run_start(period=engine.period_for("2026-10"), now=utc(2026, 11, 1, 2), dispatch=False)
    assert todo == [october.pk]
    engine.invoice_organization(run_id=run.pk, organization_id=october.pk, render_pdf=False, send_email=False, now=utc(2026, 11, 1, 2))
    invoice = Invoice.objects.get(organization=october)
    assert [(ln.description, ln.quantity.normalize(), ln.unit_price.normalize(), ln.amount)
            for ln in invoice.lines.all()] == [
        ("CPU 4 vCPU", Decimal(336), Decimal("2"), Decimal("672.00")),
        ("CPU 4 vCPU", Decimal("132.5"), Decimal("2.5"), Decimal("331.25")),
        ("CPU 8 vCPU", Decimal("107.5"), Decimal("4"), Decimal("430.00")),
        ("CPU 8 vCPU (hibernated)", Decimal(168), Decimal("0.1"), Decimal("16.80")),
        ("Bandwidth above 1000 GB included", Decimal(200), Decimal("0.01"), Decimal("2.00")),
    ]
    assert (invoice.subtotal, invoice.total, invoice.amount_due) == (
        Decimal("1452.05"), Decimal("1452.05"), Decimal("1452.05"))


def test_interim_at_day_ten_plus_the_rest_of_the_month_equals_the_metered_month(october):
    meter_and_roll_up(utc(2026, 11, 1))
    _, first = engine.interim_bill(organization=october, until=utc(2026, 10, 10), now=utc(2026, 10, 10))
    _, rest = engine.interim_bill(organization=october, since=utc(2026, 10, 10), until=utc(2026, 11, 1),
                                  now=utc(2026, 11, 1))
    run, _ = engine.invoice_run_start(period=engine.period_for("2026-10"), now=utc(2026, 11, 1, 2), dispatch=False)
    engine.invoice_organization(run_id=run.pk, organization_id=october.pk, render_pdf=False, send_email=False)
    monthly = Invoice.objects.get(organization=october)
    assert first.total == Decimal("432.00")
    assert first.total + rest.total == monthly.total == Decimal("1452.05")
