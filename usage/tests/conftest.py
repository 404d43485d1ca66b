from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db.models import Sum

from usage.models import RatedUsage

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
