from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db.models import Sum

from accounts.models import BillingMode
from usage import metering, rollups
from usage.ingest import events_ingest
from usage.models import RatedUsage
from usage.tests.factories import ProductFactory, add_price

DAY = (2026, 3, 10)


def at(hour: int, minute: int = 0, second: int = 0, *, day: tuple[int, int, int] = DAY) -> datetime:
    return datetime(*day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def clock():
    """Frozen at 2026-03-10 23:00 UTC unless a test moves it."""
    with time_machine.travel(at(23, 0), tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def few_chunks(settings):
    # Two chunks keep minute-by-minute tests quick and still exercise chunking.
    settings.USAGE_METERING_CHUNKS = 2


def billed(**filters) -> tuple[Decimal, int]:
    totals = RatedUsage.objects.filter(**filters).aggregate(amount=Sum("amount"), minutes=Sum("minutes"))
    return totals["amount"] or Decimal("0"), totals["minutes"] or 0


def ledger(**filters) -> dict[tuple, tuple[Decimal, int]]:
    """Net amount and minutes per (resource, product, state, price, hour): what two ways of
    metering the same history must agree on exactly."""
    rows = RatedUsage.objects.filter(**filters).values_list(
        "resource_id", "product_id", "state", "price_id", "start_minute", "amount", "minutes"
    )
    out: dict[tuple, tuple[Decimal, int]] = {}
    for resource, product, state, price, start, amount, minutes in rows:
        key = (resource, product, state, price, start // 60)
        a, m = out.get(key, (Decimal("0"), 0))
        out[key] = (a + amount, m + minutes)
    return {k: v for k, v in out.items() if v != (Decimal("0"), 0)}


# --- The spend explorer's history (test_spend*.py) --------------------------------------

SPEND_NOW = datetime(2026, 3, 2, 10, 35, tzinfo=UTC)


def spend_at(day: int, hour: int, minute: int = 0, month: int = 3) -> str:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC).isoformat()


@pytest.fixture
def spend_clock():
    with time_machine.travel(SPEND_NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def spend_history(org, spend_clock):
    """Three servers at rates that are no whole cents an hour, from 28 Feb (so the range
    crosses a month) to 2 Mar 10:00, metered and rolled up as production does. Postpaid,
    so that where the hour's on_commit hooks run (a browser test's committed database)
    credits do not hibernate them for want of a balance."""
    org.billing_mode = BillingMode.POSTPAID
    org.credit_limit = Decimal("1000")
    org.save(update_fields=["billing_mode", "credit_limit"])
    small = ProductFactory(code="cpu-2", name="CPU 2 vCPU")
    large = ProductFactory(code="mem-8", name="Memory 8 GB")
    add_price(small, "0.0137", valid_from=datetime(2026, 1, 1, tzinfo=UTC))
    add_price(large, "0.0419", valid_from=datetime(2026, 1, 1, tzinfo=UTC))
    result = events_ingest(items=[
        {"id": "a1", "type": "created", "resource": "srv-a", "timestamp": spend_at(28, 21, month=2),
         "organization": org.pk, "product": "cpu-2", "name": "web-1"},
        {"id": "a2", "type": "started", "resource": "srv-a", "timestamp": spend_at(28, 21, 13, month=2)},
        {"id": "b1", "type": "created", "resource": "srv-b", "timestamp": spend_at(1, 5),
         "organization": org.pk, "product": "mem-8", "name": "db-1"},
        {"id": "b2", "type": "started", "resource": "srv-b", "timestamp": spend_at(1, 5, 41)},
        {"id": "b3", "type": "stopped", "resource": "srv-b", "timestamp": spend_at(1, 19, 7)},
        {"id": "b4", "type": "started", "resource": "srv-b", "timestamp": spend_at(2, 3, 0)},
        {"id": "c1", "type": "created", "resource": "srv-c", "timestamp": spend_at(1, 23, 0),
         "organization": org.pk, "product": "cpu-2", "name": "batch"},
        {"id": "c2", "type": "started", "resource": "srv-c", "timestamp": spend_at(1, 23, 30)},
        {"id": "c3", "type": "deleted", "resource": "srv-c", "timestamp": spend_at(2, 3, 10)},
    ]).as_dict()
    assert result["accepted"] == 9, result
    metering.meter_pass(until=datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    rollups.rollup_pending()
    return small, large
