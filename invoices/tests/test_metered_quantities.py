"""Metered quantities (bandwidth, storage) as invoices read and price them: the one
implementation (`invoices.sources.metered_quantities`), aggregated as each metric says."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from invoices import sources
from pricing.models import Price, PriceTier
from usage.ingest import events_ingest
from usage.models import Aggregation, Metric, Resource, UsageEvent, to_minute
from usage.tests.factories import ProductFactory, add_price

pytestmark = pytest.mark.django_db


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 10, hour, minute, tzinfo=UTC)


MONTH = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def metered(org):
    with time_machine.travel(at(23, 0), tick=False):
        server = ProductFactory(code="cpu-4")
        add_price(server, "1.20", valid_from=datetime(2026, 1, 1, tzinfo=UTC))
        bandwidth = ProductFactory(code="bandwidth", kind="bandwidth", billing_model="overage")
        price = Price.objects.create(product=bandwidth, currency="USD", state="running", unit="gb",
                                     pricing_model="graduated", included_quantity=Decimal("100"),
                                     valid_from=datetime(2026, 1, 1, tzinfo=UTC))
        PriceTier.objects.create(price=price, up_to=Decimal("1000"), unit_amount=Decimal("0.05"))
        PriceTier.objects.create(price=price, up_to=None, unit_amount=Decimal("0.02"))
        Metric.objects.create(code="bandwidth_gb", name="Bandwidth", unit="GB", product=bandwidth)
        Metric.objects.create(code="storage_gb", name="Storage peak", unit="GB", product=bandwidth,
                              aggregation=Aggregation.MAX)
        Metric.objects.create(code="disk_gb", name="Disk", unit="GB", product=bandwidth,
                              aggregation=Aggregation.LAST)
        events = [{"id": "c", "type": "created", "resource": "srv-1", "timestamp": at(8, 0).isoformat(),
                   "organization": org.pk, "product": "cpu-4"}]
        for n, (metric, quantity, hour, minute) in enumerate([
            ("bandwidth_gb", "700", 9, 59), ("bandwidth_gb", "650.5", 10, 59), ("storage_gb", "40", 9, 59),
            ("storage_gb", "25", 10, 59), ("disk_gb", "30", 11, 59), ("disk_gb", "20", 9, 59),
            ("bandwidth_gb", "999", 22, 59),
        ]):
            events.append({"id": f"q{n}", "type": "metered", "resource": "srv-1", "metric": metric,
                           "quantity": quantity, "timestamp": at(hour, minute).isoformat()})
        events_ingest(items=events)


def _quantities(org, end=None) -> dict[str, sources.MeteredQuantity]:
    found = sources.metered_quantities([org.pk], MONTH, MONTH, end or at(22, 0))
    return dict(zip(_codes(org, end), found.get(org.pk, []), strict=True))


def _codes(org, end) -> list[str]:
    # metered_quantities returns its rows sorted by (organisation, metric code).
    return sorted(set(UsageEvent.objects.filter(organization=org, type="metered", quantity__isnull=False,
                                                occurred_at__lt=end or at(22, 0)).values_list("metric", flat=True)))


def test_quantities_aggregate_by_sum_max_or_last_as_the_metric_says(org, metered):
    quantities = {code: q.quantity for code, q in _quantities(org).items()}
    assert quantities == {"bandwidth_gb": Decimal("1350.5"), "storage_gb": Decimal("40"), "disk_gb": Decimal("30")}


def test_overage_above_the_allowance_is_priced_by_the_price_book_tiers(org, metered):
    bandwidth = _quantities(org)["bandwidth_gb"]
    # 1,350.5 GB used, 100 included: 1,250.5 billable = 1,000 × 0.05 + 250.5 × 0.02.
    assert bandwidth.included == Decimal("100")
    assert sources.price_quantity(bandwidth.price, bandwidth.quantity - bandwidth.included) == Decimal("55.01")


def test_an_event_without_a_quantity_is_not_read(org, metered):
    # No constraint makes a metered event carry a quantity; one without is never "last".
    resource = Resource.objects.get(external_id="srv-1")
    UsageEvent.objects.create(event_id="q-empty", type="metered", organization=org, resource=resource,
                              occurred_at=at(12, 0), minute=to_minute(at(12, 0)), received_at=at(12, 0),
                              metric="disk_gb", quantity=None)
    assert _quantities(org)["disk_gb"].quantity == Decimal("30")
