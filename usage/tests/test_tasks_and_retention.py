from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from pricing.models import ResourceState
from usage import metering, partitions, services, tasks
from usage.models import MeteringChunk, MeteringRun, RatedUsage, StateSource, UsageAccrual, UsageDaily
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
    assert len(created) == 10  # per table (spans, accruals): the day before, the day, three ahead
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


def _accruals_in(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 - test constants
        return cursor.fetchone()[0]


def test_accruals_live_in_day_partitions_and_old_days_are_dropped_whole_once_no_open_hour_needs_them(
        server, settings):
    today = at(0, 0).date()
    created = partitions.ensure_partitions(today=today - timedelta(days=12))
    assert sorted(c for c in created if c.startswith("usage_usageaccrual_")) == [
        f"usage_usageaccrual_p202602{d}" for d in (25, 26, 27, 28)] + ["usage_usageaccrual_p20260301"]
    metering.meter_pass(until=at(22, 30))  # 20:00-22:00 stored as spans, 22:00-22:30 accrued
    partitions.ensure_partitions(today=today)
    assert UsageAccrual.objects.count() == 1
    assert _accruals_in("usage_usageaccrual_p20260310") == 1  # moved out of DEFAULT with its day's partition

    # Eleven days later the day is past the retention, but a chunk's open hour (its rated
    # mark is 22:00 that day) still needs its accruals: the closing run charges the
    # hour's spans minus them. Only the empty days before it go.
    later = today + timedelta(days=settings.USAGE_DETAIL_RETENTION_DAYS + 1)
    stats = partitions.drop_expired(today=later)
    assert stats["accrual_partitions_dropped"] == 6
    assert UsageAccrual.objects.count() == 1
    # Metering went on: every chunk's rated mark is past the day, which goes whole.
    MeteringChunk.objects.update(rated_minute=metering.to_minute(at(0, 0, day=(2026, 3, 20))),
                                 watermark_minute=metering.to_minute(at(0, 0, day=(2026, 3, 20))))
    stats = partitions.drop_expired(today=later)
    assert (stats["accrual_partitions_dropped"], stats["accruals_deleted"]) == (1, 0)
    assert UsageAccrual.objects.count() == 0
    assert "usage_usageaccrual_p20260310" not in partitions.existing_partitions(partitions.ACCRUALS).values()


def test_accruals_of_a_day_without_a_partition_are_deleted_from_default_past_the_retention(server, settings):
    metering.meter_pass(until=at(22, 30))
    old = UsageAccrual.objects.get()
    UsageAccrual.objects.create(run_id=old.run_id, organization_id=old.organization_id, currency="USD",
                                start_minute=metering.to_minute(at(0, 0, day=(2026, 1, 1))),
                                end_minute=metering.to_minute(at(0, 1, day=(2026, 1, 1))), amount=Decimal("0.02"))
    assert _accruals_in("usage_usageaccrual_default") == 2  # no day partitions in this test database's past
    stats = partitions.drop_expired(today=at(0, 0).date())
    assert stats["accruals_deleted"] == 1
    assert list(UsageAccrual.objects.values_list("pk", flat=True)) == [old.pk]


def test_partitioning_the_accruals_keeps_the_rows_and_ids_of_a_table_with_data(org):
    """The migration's step on a table as 0007 left it (plain, identity id, the BRIN index
    dropped by the migration's first operation), with rows inside and past the retention."""
    from django.db.migrations.executor import MigrationExecutor
    from django.utils import timezone

    state = MigrationExecutor(connection).loader.project_state(("usage", "0007_rated_spans_and_accruals"))
    old_model = state.apps.get_model("usage", "UsageAccrual")
    now = metering.to_minute(timezone.now())
    with connection.schema_editor() as editor:
        editor.execute("DROP TABLE usage_usageaccrual")
        editor.create_model(old_model)  # its indexes are created when the editor closes
    with connection.schema_editor() as editor:
        editor.execute("DROP INDEX usage_accrual_start_brin")
        with connection.cursor() as cursor:
            cursor.execute("""
                INSERT INTO usage_usageaccrual (run_id, organization_id, currency, start_minute, end_minute, amount)
                SELECT 1, %s, 'USD', %s - g * 1440, %s - g * 1440 + 1, g FROM generate_series(0, 14) AS g
            """, [org.pk, now, now])
            cursor.execute("SELECT MAX(id) FROM usage_usageaccrual")
            max_id = cursor.fetchone()[0]
        partitions.partition_accruals(editor)
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'usage_usageaccrual'")
        assert cursor.fetchone()[0] == "p"
    assert sorted(UsageAccrual.objects.values_list("amount", flat=True)) == [Decimal(g) for g in range(15)]
    # Days inside the retention are partitions; older rows wait in DEFAULT for the task.
    assert _accruals_in("usage_usageaccrual_default") == 4
    fresh = UsageAccrual.objects.create(run_id=1, organization_id=org.pk, currency="USD", start_minute=now,
                                        end_minute=now + 1, amount=Decimal("1"))
    assert fresh.pk > max_id
