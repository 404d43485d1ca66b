"""Two metering passes at once, on separate connections, never double a minute."""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection

from accounts.tests.factories import OrganizationFactory
from pricing.models import ResourceState
from usage import metering, services
from usage.models import MeteringRun, RatedUsage, StateSource
from usage.tests.conftest import at, billed
from usage.tests.factories import ProductFactory, add_price


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_metering_passes_rate_every_minute_once(clock):
    product = ProductFactory()
    add_price(product, "1.20", valid_from=at(0, 0, day=(2026, 1, 1)))
    for n in range(6):
        resource = services.resource_create(organization=OrganizationFactory(), external_id=f"srv-{n}",
                                            product=product, at=at(8, 0), source=StateSource.EVENT)
        services.resource_change_state(resource=resource, state=ResourceState.RUNNING, at=at(8, 0),
                                       source=StateSource.EVENT)
    metering.meter_pass(until=at(8, 0))

    barrier = threading.Barrier(2)
    errors = []

    def run():
        try:
            barrier.wait()
            # Eight one-hour slices per chunk: plenty of chances to collide.
            metering.meter_pass(until=at(16, 0))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert billed() == (Decimal("0.02") * 6 * 8 * 60, 6 * 8 * 60)
    minutes = Counter(RatedUsage.objects.values_list("resource_id", "start_minute"))
    assert max(minutes.values()) == 1
    # Both passes did work (or one did all of it): no run is empty, none overlaps another.
    spans = sorted(MeteringRun.objects.values_list("chunk", "from_minute", "until_minute"))
    for (c1, _f1, u1), (c2, f2, _u2) in zip(spans, spans[1:], strict=False):
        assert c1 != c2 or u1 <= f2
