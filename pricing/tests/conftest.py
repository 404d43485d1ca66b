from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pricing import services
from pricing.services import PriceSpec
from pricing.tests.factories import ProductFactory

# Prices in tests are loaded as history: `now` is the start of 2026.
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def server(db):
    return ProductFactory(code="cpu-4-16", name="CPU 4/16")


@pytest.fixture
def make_price():
    def _make(product, amount, *, currency="USD", state="running", valid_from=T0, now=None, **kwargs):
        spec = PriceSpec(product=product, currency=currency, state=state, amount=Decimal(amount),
                         valid_from=valid_from, **kwargs)
        return services.price_create(spec=spec, now=now or valid_from)

    return _make
