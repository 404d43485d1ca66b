from datetime import UTC, datetime

import pytest
import time_machine

from pricing.models import ResourceState
from pricing.tests.factories import ProductFactory
from usage import metering, rollups
from usage import services as usage_services
from usage.models import StateSource
from usage.tests.factories import add_price


def at(hour, minute=0, day=10, month=3):
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture(autouse=True)
def hooks(settings):
    settings.USAGE_METERING_CHUNKS = 1
    settings.USAGE_AFTER_METERING = []


@pytest.fixture
def gpu(db):
    """$1.00 an hour running, nothing hibernated."""
    product = ProductFactory(code="gpu-1")
    add_price(product, "1.00", valid_from=at(0, day=1))
    add_price(product, "0.00", state=ResourceState.HIBERNATED, valid_from=at(0, day=1))
    return product


@pytest.fixture
def start_server():
    def _start(org, product, since, external_id="srv-1"):
        with time_machine.travel(since, tick=False):
            resource = usage_services.resource_create(organization=org, external_id=external_id, product=product,
                                                      at=since, source=StateSource.EVENT)
            return usage_services.resource_change_state(resource=resource, state=ResourceState.RUNNING,
                                                        at=since, source=StateSource.EVENT)

    return _start


@pytest.fixture
def tick(django_capture_on_commit_callbacks):
    """tick(now, evaluate=True): metering and its rollup up to `now` (the month-to-date
    figure moves when metering closes an hour), then (optionally) the budgets' evaluation,
    with the clock at `now` and after-commit hooks run."""
    from budgets import services

    def _tick(now, evaluate=True):
        with time_machine.travel(now, tick=False):
            with django_capture_on_commit_callbacks(execute=True):
                metering.meter_pass(until=now)
                rollups.rollup_pending()
            if evaluate:
                with django_capture_on_commit_callbacks(execute=True):
                    return services.evaluate_all(now=now)
        return 0

    return _tick
