from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from pricing.models import ResourceState
from usage import metering, partitions, services, tasks
from usage.models import MeteringRun, RatedUsage, StateSource, UsageAccrual, UsageDaily
from usage.tests.conftest import at
from usage.tests.factories import ProductFactory, add_price

pytestmark = pytest.mark.django_db

CALLS: list[int] = []


def record_run(run_id: int) -> None:
    CALLS.append(run_id)


@pytest.fixture
def server(org, clock):
    product = ProductFactory()
    add_price(product, "1.20", valid_from=at(0, 0, day=(2026, 1, 1)))
    resource = services.resource_create(organization=org, external_id="srv-1", product=product, at=at(20, 0),
                                        source=StateSource.EVENT)
    return services.resource_change_state(resource=resource, state=ResourceState.RUNNING, at=at(20, 0),
                                          source=StateSource.EVENT)


def test_the_beat_task_meters_every_chunk_and_calls_the_hooks_with_each_committed_run(
        server, settings, django_capture_on_commit_callbacks):
    settings.USAGE_AFTER_METERING = ["usage.tests.test_tasks_and_retention.record_run"]
    CALLS.clear()
    with django_capture_on_commit_callbacks(execute=True):
        until = tasks.meter_task()
    assert until == metering.to_minute(at(22, 58))  # now (23:00) minus two minutes of grace
    runs = set(MeteringRun.objects.values_list("id", flat=True))
    assert runs and set(CALLS) == runs
    # 20:00-22:00 is stored as rated spans and rolled up; 22:00-22:58 is the open hour,
    # accrued for the organisation (nothing per resource until the hour closes).
    assert tasks.rollup_task() == MeteringRun.objects.filter(rows__gt=0).count() == 2
    assert UsageDaily.objects.get().minutes == 2 * 60
    accrual = UsageAccrual.objects.get()
    assert (accrual.end_minute - accrual.start_minute, accrual.amount) == (58, Decimal("1.16"))


def test_retention_creates_daily_partitions_ahead_and_drops_whole_old_days(server, settings):
    today = at(0, 0).date()
    created = partitions.ensure_partitions(today=today - timedelta(days=12))
    assert len(created) == 5  # the day before, the day, three ahead
    metering.meter_pass(until=at(22, 0))
    partitions.ensure_partitions(today=today)
    assert RatedUsage.objects.count() == 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM usage_ratedusage_p20260310")
        assert cursor.fetchone()[0] == 2  # moved out of DEFAULT when the day's partition was made

    # Ten days later the day is past the retention, but its runs are not rolled up: kept.
    later = today + timedelta(days=settings.USAGE_DETAIL_RETENTION_DAYS + 1)
    assert partitions.drop_expired(today=later)["partitions_dropped"] == 6  # the empty days before it go
    assert RatedUsage.objects.count() == 2
    tasks.rollup_task()
    assert partitions.drop_expired(today=later)["partitions_dropped"] == 1
    assert RatedUsage.objects.count() == 0
    assert UsageDaily.objects.get().minutes == 120  # the history stays in the rollups
