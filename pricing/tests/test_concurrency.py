import threading
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.db import connection

from core.errors import DomainError
from pricing import services
from pricing.models import Price
from pricing.services import PriceSpec
from pricing.tests.conftest import T0
from pricing.tests.factories import ProductFactory


@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_prices_end_with_exactly_one_written():
    product = ProductFactory(code="contended")
    barrier = threading.Barrier(4)
    outcomes = []

    def schedule(n):
        try:
            barrier.wait()
            spec = PriceSpec(product=product, currency="USD", amount=D(f"1.0{n}"), valid_from=T0 + timedelta(hours=n),
                             valid_to=T0 + timedelta(days=2))
            services.price_create(spec=spec, now=T0)
            outcomes.append("written")
        except DomainError as exc:  # the overlap check, or the database's exclusion constraint (Conflict)
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=schedule, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("written") == 1
    assert len(outcomes) == 4
    assert Price.objects.filter(product=product).count() == 1
