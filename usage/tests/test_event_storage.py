"""Event storage: daily partitions by event time with retention, and the dedup window
(`usage.models.events.DEDUP_WINDOW_DAYS`): inside it a duplicate is refused exactly once,
across a bucket boundary and between concurrent batches too; past it the id is new."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from usage import event_partitions, services, tasks
from usage.cloudevents import dedup_digest
from usage.ingest import events_ingest
from usage.models import Metric, Resource, StateInterval, StateSource, UsageEvent
from usage.models.events import DEDUP_WINDOW_DAYS, dedup_bucket
from usage.tests.conftest import at
from usage.tests.factories import ProductFactory, add_price

WINDOW = timedelta(days=DEDUP_WINDOW_DAYS)


def _server(org, when):
    product = ProductFactory(code="cpu-4")
    add_price(product, "1.20", valid_from=at(0, 0, day=(2020, 1, 1)))
    return services.resource_create(organization=org, external_id="srv-1", product=product, at=when,
                                    source=StateSource.EVENT)


def started(event_id, when):
    return {"id": event_id, "type": "started", "resource": "srv-1", "timestamp": when.isoformat()}


def statuses(result):
    return [(r["id"], r["status"]) for r in result.results]


def _count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 - test-only, names from this module
        return cursor.fetchone()[0]


def next_boundary(now):
    """The start of the dedup bucket after `now`'s."""
    return event_partitions.dedup_window_start(now) + WINDOW


@pytest.mark.django_db
def test_events_land_in_their_days_partition_and_days_past_the_retention_are_dropped(org, clock, settings):
    today = at(0, 0).date()
    created = event_partitions.ensure_event_partitions(today=today)
    # Eight days back (the oldest an event may be), the day, three ahead; three dedup buckets.
    assert len([n for n in created if n.startswith("usage_usageevent_p")]) == 12
    assert len([n for n in created if n.startswith("usage_eventkey_b")]) == 3
    _server(org, at(9, 0))
    bandwidth = ProductFactory(code="bw")
    Metric.objects.create(code="bandwidth_gb", name="Bandwidth", product=bandwidth)
    events_ingest(items=[
        started("s1", at(10, 0)),
        {"id": "q1", "type": "metered", "resource": "srv-1", "timestamp": at(11, 0).isoformat(),
         "metric": "bandwidth_gb", "quantity": "2.5"},
    ])
    assert _count("usage_usageevent_p20260310") == 2
    # A day without its partition (demo data, history) goes to DEFAULT, and moves into the
    # day's partition when the retention task makes it.
    UsageEvent.objects.create(event_id="old", type="metered", organization=org, resource=Resource.objects.get(),
                              occurred_at=at(10, 0, day=(2026, 2, 1)), minute=0, received_at=at(10, 0),
                              metric="bandwidth_gb", quantity=Decimal(1))
    assert _count("usage_usageevent_default") == 1
    event_partitions.ensure_event_partitions(today=at(0, 0, day=(2026, 2, 5)).date())
    assert _count("usage_usageevent_default") == 0 and _count("usage_usageevent_p20260201") == 1

    # Retention: a day older than USAGE_EVENT_RETENTION_DAYS goes whole; younger days stay.
    settings.USAGE_EVENT_RETENTION_DAYS = 100
    stats = event_partitions.drop_expired_events(today=today + timedelta(days=100))
    assert stats["event_partitions_dropped"] == 20  # 2026-01-28 to 02-08, and 03-02 to 03-09
    assert UsageEvent.objects.count() == 2
    stats = event_partitions.drop_expired_events(today=today + timedelta(days=101))
    assert stats["event_partitions_dropped"] == 1
    assert not UsageEvent.objects.filter(event_id__in=["s1", "q1"]).exists()
    assert "usage_usageevent_p20260310" not in event_partitions.event_partitions().values()
    # The history stays; it names an event that is gone.
    assert StateInterval.objects.filter(event__isnull=False).count() == 1


@pytest.mark.django_db
def test_rows_past_the_retention_left_in_default_are_deleted_and_old_buckets_dropped(org, clock, settings):
    resource = _server(org, at(9, 0))
    for n, day in enumerate([(2025, 1, 1), (2025, 6, 1), (2026, 3, 1)]):
        UsageEvent.objects.create(event_id=f"d{n}", type="started", organization=org, resource=resource,
                                  occurred_at=at(10, 0, day=day), minute=0, received_at=at(10, 0))
    today = at(0, 0).date()
    event_partitions.ensure_event_partitions(today=today - 2 * WINDOW)
    event_partitions.ensure_event_partitions(today=today)
    current = dedup_bucket(at(0, 0))
    assert {current - 2, current - 1, current} <= set(event_partitions.key_partitions())
    stats = event_partitions.drop_expired_events(today=today)
    assert stats["events_deleted"] == 2  # the two 2025 rows; 2026-03-01 is within 100 days
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["d2"]
    assert min(event_partitions.key_partitions()) == current  # earlier buckets are over: dropped
    assert stats["key_partitions_dropped"] >= 2
    settings.USAGE_EVENT_RETENTION_DAYS = 30
    with pytest.raises(Exception, match="at least 62"):
        event_partitions.drop_expired_events(today=today)


@pytest.mark.django_db
def test_the_retention_task_makes_and_drops_event_partitions_too(org, clock):
    result = tasks.retention_task()
    assert result["created"] >= 12 + 3
    assert {"event_partitions_dropped", "events_deleted", "key_partitions_dropped"} <= result.keys()


@pytest.mark.django_db
def test_a_duplicate_inside_the_window_is_refused_across_a_bucket_boundary(org, clock):
    boundary = next_boundary(at(23, 0))
    clock.move_to(boundary - timedelta(minutes=1))
    _server(org, boundary - timedelta(hours=1))
    first = events_ingest(items=[started("s1", boundary - timedelta(minutes=2))])
    assert statuses(first) == [("s1", "accepted")]

    clock.move_to(boundary + timedelta(minutes=1))  # the next bucket
    again = events_ingest(items=[started("s1", boundary - timedelta(minutes=2)), started("s1-b", boundary)])
    assert statuses(again) == [("s1", "duplicate"), ("s1-b", "accepted")]
    # Still inside the window 34 days after acceptance, with another timestamp: refused.
    clock.move_to(boundary + WINDOW - timedelta(days=1, minutes=2))
    late = events_ingest(items=[started("s1", boundary + WINDOW - timedelta(days=1, minutes=3))])
    assert statuses(late) == [("s1", "duplicate")]
    assert UsageEvent.objects.filter(event_id="s1").count() == 1
    # A refused duplicate writes no key of its own: the window counts from acceptance.
    with connection.cursor() as cursor:
        cursor.execute("SELECT bucket FROM usage_eventkey WHERE digest = md5('s1')::uuid ORDER BY bucket")
        assert [b for (b,) in cursor.fetchall()] == [dedup_bucket(boundary) - 1, dedup_bucket(boundary)]


@pytest.mark.django_db
def test_past_the_window_the_same_id_is_a_new_event_and_a_retry_is_too_old(org, clock):
    boundary = next_boundary(at(23, 0))
    clock.move_to(boundary - timedelta(hours=1))
    _server(org, boundary - timedelta(hours=2))
    assert statuses(events_ingest(items=[started("s1", boundary - timedelta(hours=1))])) == [("s1", "accepted")]

    clock.move_to(boundary - timedelta(hours=1) + 2 * WINDOW)  # 70 days later: two buckets on
    retry = events_ingest(items=[started("s1", boundary - timedelta(hours=1))])
    assert retry.results[0]["status"] == "rejected"  # the same event, 70 days old: too old, never new
    reused = events_ingest(items=[started("s1", boundary - timedelta(hours=2) + 2 * WINDOW)])
    assert statuses(reused) == [("s1", "accepted")]
    assert UsageEvent.objects.filter(event_id="s1").count() == 2


@pytest.mark.django_db
def test_a_created_event_seen_past_the_window_is_a_new_resource_event(org, clock):
    ProductFactory(code="cpu-4")
    created = {"id": "c1", "type": "created", "resource": "srv-9", "organization": org.pk, "product": "cpu-4",
               "timestamp": at(22, 0).isoformat()}
    assert statuses(events_ingest(items=[created])) == [("c1", "accepted")]
    assert statuses(events_ingest(items=[created])) == [("c1", "duplicate")]
    clock.move_to(at(22, 0) + 2 * WINDOW)
    created["timestamp"] = (at(22, 0) + 2 * WINDOW).isoformat()
    result = events_ingest(items=[created])
    # Not a duplicate any more: judged as a created event, for a resource that exists.
    assert result.results[0]["status"] == "rejected"
    assert result.results[0]["reason"] == "resource: srv-9 already exists."


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first_commits", [True, False])
def test_concurrent_batches_across_a_boundary_accept_the_id_exactly_once(org, clock, first_commits):
    boundary = next_boundary(at(23, 0))
    clock.move_to(boundary)
    _server(org, boundary - timedelta(hours=1))
    Metric.objects.create(code="bandwidth_gb", name="Bandwidth", product=ProductFactory(code="bw"))
    inserted = threading.Event()
    answers: dict[str, object] = {}

    def metered(when):  # metered events lock no resource: the batches meet on the dedup keys only
        return [{"id": "q1", "type": "metered", "resource": "srv-1", "timestamp": when.isoformat(),
                 "metric": "bandwidth_gb", "quantity": "1"}]

    def first():
        try:
            with transaction.atomic():
                answers["first"] = statuses(events_ingest(items=metered(boundary - timedelta(minutes=3)),
                                                          now=boundary - timedelta(seconds=1)))
                inserted.set()
                time.sleep(0.5)  # the second batch is waiting on our keys now
                if not first_commits:
                    raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        finally:
            inserted.set()
            connection.close()

    def second():
        try:
            inserted.wait(10)
            answers["second"] = statuses(events_ingest(items=metered(boundary - timedelta(minutes=2)),
                                                       now=boundary + timedelta(seconds=1)))
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers["first"] == [("q1", "accepted")]
    assert answers["second"] == [("q1", "duplicate" if first_commits else "accepted")]
    assert UsageEvent.objects.filter(event_id="q1").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_the_rows_of_a_table_with_data(org):
    resource = _server(org, timezone.now() - timedelta(hours=1))
    executor = MigrationExecutor(connection)
    executor.migrate([("usage", "0005_events_hot_path")])
    try:
        with connection.cursor() as cursor:
            cursor.execute("""
                INSERT INTO usage_usageevent (event_id, type, organization_id, resource_id, occurred_at, minute,
                                              received_at, metric, quantity, product_id)
                SELECT 'm' || g, 'metered', %s, %s, now() - g * interval '1 day', 0, now() - g * interval '1 day',
                       'bandwidth_gb', g, NULL
                FROM generate_series(0, 199) AS g
            """, [org.pk, resource.pk])
            cursor.execute("SELECT MAX(id) FROM usage_usageevent")
            max_id = cursor.fetchone()[0]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert UsageEvent.objects.count() == 200
    assert sorted(UsageEvent.objects.values_list("quantity", flat=True)) == [Decimal(g) for g in range(200)]
    # Recent days are partitions, history beyond the retention is in DEFAULT (the task deletes it).
    assert _count("usage_usageevent_default") == 200 - 101
    # The id sequence continues, and ids received within the window are still duplicates.
    Metric.objects.create(code="bandwidth_gb", name="Bandwidth", product=ProductFactory(code="bw"))
    def metered(event_id, when):
        return {"id": event_id, "type": "metered", "resource": "srv-1", "timestamp": when.isoformat(),
                "metric": "bandwidth_gb", "quantity": "1"}

    m0, m1 = (UsageEvent.objects.get(event_id=e) for e in ("m0", "m1"))
    result = events_ingest(items=[metered("m0", m0.occurred_at), metered("m1", m1.occurred_at),
                                  metered("new", m0.occurred_at)])
    assert [r["status"] for r in result.results] == ["duplicate", "duplicate", "accepted"]
    assert UsageEvent.objects.get(event_id="new").pk > max_id


def _key_scans(plan: dict) -> list[dict]:
    found = [plan] if plan.get("Relation Name", "").startswith("usage_eventkey") else []
    for child in plan.get("Plans", []):
        found += _key_scans(child)
    return found


@pytest.mark.django_db
def test_the_known_id_lookup_probes_each_key_never_scans_the_bucket():
    """A batch's known-id lookup is an index probe per id on its digest. As an EXISTS it
    was planned as a hash of the whole bucket partition while the partition's statistics
    said it was small (this server runs without autovacuum): a scan of 110 days of keys."""
    from usage.ingest import _KNOWN_IDS

    event_partitions.ensure_event_partitions()
    bucket = dedup_bucket(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO usage_eventkey (digest, bucket) SELECT md5('seen-' || g)::uuid, b "
                       "FROM generate_series(1, 5000) AS g, (VALUES (%s), (%s)) AS v(b)", [bucket, bucket + 1])
        cursor.execute("EXPLAIN (FORMAT JSON) " + _KNOWN_IDS,  # native ids, and CloudEvents' keys
                       [[f"seen-{i}" for i in range(1000)],
                        [None if i % 2 else dedup_digest(f"seen-{i}", "/s") for i in range(1000)], bucket])
        plan = cursor.fetchone()[0][0]["Plan"]
    scans = _key_scans(plan)
    assert scans, plan
    for scan in scans:
        assert "digest" in scan.get("Index Cond", ""), scan
        assert scan["Relation Name"] == f"usage_eventkey_b{bucket}", scan  # bucket k only
