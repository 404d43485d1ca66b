from __future__ import annotations

from decimal import Decimal

import pytest

from pricing.models import Price, PriceTier
from usage.ingest import events_ingest
from usage.metered import metered_charges, metered_quantities
from usage.models import Aggregation, Metric, Resource, UsageEvent, to_minute
from usage.tests.conftest import at
from usage.tests.factories import ProductFactory, add_price

pytestmark = pytest.mark.django_db


@pytest.fixture
def metered(org, clock):
    server = ProductFactory(code="cpu-4")
    add_price(server, "1.20", valid_from=at(0, 0, day=(2026, 1, 1)))
    bandwidth = ProductFactory(code="bandwidth", kind="bandwidth", billing_model="overage")
    price = Price.objects.create(product=bandwidth, currency="USD", state="running", unit="gb",
                                 pricing_model="graduated", included_quantity=Decimal("100"),
                                 valid_from=at(0, 0, day=(2026, 1, 1)))
    PriceTier.objects.create(price=price, lower=Decimal("0"), upper=Decimal("1000"), unit_amount=Decimal("0.05"))
    PriceTier.objects.create(price=price, lower=Decimal("1000"), upper=None, unit_amount=Decimal("0.02"))
    Metric.objects.create(code="bandwidth_gb", name="Bandwidth", unit="GB", product=bandwidth)
    Metric.objects.create(code="storage_gb", name="Storage peak", unit="GB", product=bandwidth,
                          aggregation=Aggregation.MAX)
    Metric.objects.create(code="disk_gb", name="Disk", unit="GB", product=bandwidth, aggregation=Aggregation.LAST)
    events = [{"id": "c", "type": "created", "resource": "srv-1", "timestamp": at(8, 0).isoformat(),
               "organization": org.pk, "product": "cpu-4"}]
    for n, (metric, quantity, hour) in enumerate([
        ("bandwidth_gb", "700", 9), ("bandwidth_gb", "650.5", 10), ("storage_gb", "40", 9), ("storage_gb", "25", 10),
        ("disk_gb", "30", 11), ("disk_gb", "20", 9), ("bandwidth_gb", "999", 23),
    ]):
        events.append({"id": f"q{n}", "type": "metered", "resource": "srv-1", "metric": metric,
                       "quantity": quantity, "timestamp": at(hour if hour < 23 else 22, 59).isoformat()})
    events_ingest(items=events)


def test_quantities_aggregate_by_sum_max_or_last_as_the_metric_says(org, metered):
    assert metered_quantities(organization=org, start=at(0, 0), end=at(22, 0)) == {
        "bandwidth_gb": Decimal("1350.5"), "storage_gb": Decimal("40"), "disk_gb": Decimal("30")}


def test_overage_above_the_allowance_is_priced_by_the_price_book_tiers(org, metered):
    charges = {c.metric.code: c for c in metered_charges(organization=org, start=at(0, 0), end=at(22, 0))}
    bandwidth = charges["bandwidth_gb"]
    # 1,350.5 GB used, 100 included: 1,250.5 billable = 1,000 × 0.05 + 250.5 × 0.02.
    assert (bandwidth.included, bandwidth.billable, bandwidth.amount) == (
        Decimal("100"), Decimal("1250.5"), Decimal("55.01"))


def test_an_event_without_a_quantity_is_ignored_as_the_invoice_ignores_it(org, metered):
    # No constraint makes a metered event carry a quantity; invoices.sources reads only
    # those that do, so the portal's figures must too (it used to take None as "last").
    resource = Resource.objects.get(external_id="srv-1")
    UsageEvent.objects.create(event_id="q-empty", type="metered", organization=org, resource=resource,
                              occurred_at=at(12, 0), minute=to_minute(at(12, 0)), received_at=at(12, 0),
                              metric="disk_gb", quantity=None)
    assert metered_quantities(organization=org, start=at(0, 0), end=at(22, 0))["disk_gb"] == Decimal("30")
    charges = {c.metric.code: c for c in metered_charges(organization=org, start=at(0, 0), end=at(22, 0))}
    assert charges["disk_gb"].quantity == Decimal("30")
