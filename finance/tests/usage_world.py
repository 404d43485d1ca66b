"""The daily rollups the Usage trends tests compute by hand (finance/tests/test_report_usage.py)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from accounts.tests.factories import OrganizationFactory
from pricing.models import ResourceState
from pricing.tests.factories import ProductFactory
from usage.models import UsageDaily
from usage.tests.factories import ResourceFactory


@pytest.fixture
def rollups(db):
    gpu = ProductFactory(code="gpu-h100-8x", name="H100 × 8", gpu_count=8)
    cpu = ProductFactory(code="cpu-4", name="CPU 4", gpu_count=0)
    one = OrganizationFactory(name="Acme")
    two = OrganizationFactory(name="Globex")
    euro = OrganizationFactory(name="Euro", currency="EUR")
    r1 = ResourceFactory(organization=one, product=gpu)
    r2 = ResourceFactory(organization=two, product=gpu)
    r3 = ResourceFactory(organization=two, product=cpu)
    r4 = ResourceFactory(organization=one, product=cpu)
    r5 = ResourceFactory(organization=euro, product=gpu)

    def row(resource, day, minutes, amount, state=ResourceState.RUNNING, currency="USD", price_id=1):
        UsageDaily.objects.create(organization=resource.organization, resource=resource, product=resource.product,
                                  state=state, price_id=price_id, currency=currency, day=day, minutes=minutes,
                                  amount=D(amount))

    row(r1, date(2026, 11, 3), 90, "12.345000000000")
    row(r1, date(2026, 11, 3), 30, "0.105000000000", state=ResourceState.STOPPED, price_id=2)
    row(r2, date(2026, 11, 3), 60, "8.235000000000")
    row(r3, date(2026, 11, 4), 20, "0.333333333333")
    row(r4, date(2026, 11, 4), 40, "0.666666666667")
    row(r1, date(2026, 11, 20), 60, "5.000000000000")
    row(r5, date(2026, 11, 3), 600, "99.000000000000", currency="EUR")  # another currency
    row(r1, date(2026, 10, 31), 600, "50.000000000000")  # before the range
    row(r2, date(2026, 12, 1), 600, "50.000000000000")  # the end is exclusive
    return {"one": one, "two": two}
