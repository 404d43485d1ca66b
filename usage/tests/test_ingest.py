from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from pricing.models import ResourceState
from usage import metering
from usage.ingest import events_ingest
from usage.models import Metric, Resource, StateInterval, UsageEvent
from usage.tests.conftest import at, billed
from usage.tests.factories import ProductFactory, add_price

pytestmark = pytest.mark.django_db


@pytest.fixture
def flavour(db):
    product = ProductFactory(code="cpu-4")
    add_price(product, "1.20", valid_from=at(0, 0, day=(2026, 1, 1)))
    return product


def ev(event_id, type_, resource="srv-1", when=None, **extra):
    return {"id": event_id, "type": type_, "resource": resource, "timestamp": (when or at(10, 0)).isoformat(), **extra}


def statuses(result):
    return [(r["id"], r["status"]) for r in result.results]


def test_each_item_gets_its_own_result_and_a_bad_item_never_drops_a_good_one(org, flavour, clock):
    result = events_ingest(items=[
        ev("e1", "created", organization=org.pk, product="cpu-4", when=at(10, 0)),
        ev("e2", "started", when=at(10, 17)),
        ev("e3", "exploded"),
        ev("e4", "started", resource="nobody"),
        ev("e5", "started", when=at(23, 6)),  # six minutes in the future
        ev("e2", "stopped", when=at(11, 0)),  # same id again in the batch
        ev("e6", "stopped", when=at(13, 42), colour="red"),
    ])
    assert statuses(result) == [("e1", "accepted"), ("e2", "accepted"), ("e3", "rejected"), ("e4", "rejected"),
                                ("e5", "rejected"), ("e2", "duplicate"), ("e6", "rejected")]
    reasons = {r["id"]: r.get("reason") for r in result.results if r["status"] == "rejected"}
    assert reasons["e4"].startswith("resource: unknown resource nobody")
    assert reasons["e5"] == "timestamp: more than 5 minutes in the future."
    assert reasons["e6"] == "colour: unknown field for a stopped event."
    assert (result.accepted, result.duplicates, result.rejected) == (2, 1, 4)
    server = Resource.objects.get(external_id="srv-1")
    assert server.state == ResourceState.RUNNING and server.organization == org


def test_the_same_event_id_is_a_duplicate_however_late_it_comes_back(org, flavour, clock):
    events_ingest(items=[ev("e1", "created", organization=org.pk, product="cpu-4"), ev("e2", "started")])
    clock.shift(3 * 86400)
    again = events_ingest(items=[ev("e2", "started"), ev("e1", "created", organization=org.pk, product="cpu-4")])
    assert statuses(again) == [("e2", "duplicate"), ("e1", "duplicate")]
    assert UsageEvent.objects.count() == 2
    assert StateInterval.objects.count() == 2


def test_events_out_of_order_build_the_same_history(org, flavour, clock):
    events_ingest(items=[ev("e1", "created", organization=org.pk, product="cpu-4", when=at(9, 0))])
    events_ingest(items=[ev("e3", "stopped", when=at(13, 42))])
    events_ingest(items=[ev("e2", "started", when=at(10, 17))])

    history = list(StateInterval.objects.order_by("started_at").values_list("eff_state", "start_minute", "end_minute"))
    m = metering.to_minute
    assert history == [("provisioning", m(at(9, 0)), m(at(10, 17))), ("running", m(at(10, 17)), m(at(13, 42))),
                       ("stopped", m(at(13, 42)), None)]
    metering.meter_pass(until=at(14, 0))
    assert billed() == (Decimal("4.10"), 205)


def test_a_late_stopped_event_is_corrected_not_lost(org, flavour, clock):
    events_ingest(items=[ev("e1", "created", organization=org.pk, product="cpu-4", when=at(9, 0)),
                         ev("e2", "started", when=at(10, 17))])
    metering.meter_pass(until=at(15, 0))
    assert billed() == (Decimal("0.02") * 283, 283)

    result = events_ingest(items=[ev("e3", "stopped", when=at(13, 42))])
    metering.meter_pass(until=at(15, 1))

    assert statuses(result) == [("e3", "accepted")]
    assert billed() == (Decimal("4.10"), 205)


def test_resize_changes_the_product_from_that_minute(org, flavour, clock):
    big = ProductFactory(code="cpu-16")
    add_price(big, "4.80", valid_from=at(0, 0, day=(2026, 1, 1)))
    events_ingest(items=[ev("e1", "created", organization=org.pk, product="cpu-4", when=at(9, 0)),
                         ev("e2", "started", when=at(10, 0)),
                         ev("e3", "resized", product="cpu-16", when=at(11, 0)),
                         ev("e4", "deleted", when=at(12, 0))])
    metering.meter_pass(until=at(13, 0))
    assert billed(product=flavour) == (Decimal("1.20"), 60)
    assert billed(product=big) == (Decimal("4.80"), 60)
    assert Resource.objects.get().deleted_at == at(12, 0)
    late = events_ingest(items=[ev("e5", "started", when=at(12, 30))])
    assert late.results[0]["status"] == "rejected"


def test_addons_are_billed_at_their_own_price_for_the_parents_state(org, flavour, clock):
    backup = ProductFactory(code="backup", kind="addon", billing_model="addon")
    add_price(backup, "0.60", valid_from=at(0, 0, day=(2026, 1, 1)))
    add_price(backup, "0.06", state=ResourceState.HIBERNATED, valid_from=at(0, 0, day=(2026, 1, 1)))
    events_ingest(items=[ev("e1", "created", organization=org.pk, product="cpu-4", when=at(9, 0)),
                         ev("e2", "started", when=at(10, 0)),
                         ev("e3", "addon_attached", product="backup", when=at(10, 30)),
                         ev("e4", "hibernated", when=at(11, 0)),
                         ev("e5", "addon_detached", product="backup", when=at(12, 0))])
    metering.meter_pass(until=at(13, 0))
    assert billed(product=backup, state=ResourceState.RUNNING) == (Decimal("0.30"), 30)
    assert billed(product=backup, state=ResourceState.HIBERNATED) == (Decimal("0.06"), 60)


def test_metered_quantities_are_stored_with_their_metric(org, flavour, clock):
    bandwidth = ProductFactory(code="bandwidth", kind="bandwidth", billing_model="overage")
    Metric.objects.create(code="bandwidth_gb", name="Bandwidth", unit="GB", product=bandwidth)
    events_ingest(items=[ev("e1", "created", organization=org.pk, product="cpu-4", when=at(9, 0))])
    result = events_ingest(items=[
        ev("q1", "metered", metric="bandwidth_gb", quantity="12.5", when=at(10, 0)),
        ev("q2", "metered", metric="bandwidth_gb", quantity="-1"),
        ev("q3", "metered", metric="egress", quantity="1"),
        ev("q4", "metered", metric="bandwidth_gb", quantity=2.5),
    ])
    assert statuses(result) == [("q1", "accepted"), ("q2", "rejected"), ("q3", "rejected"), ("q4", "rejected")]
    assert UsageEvent.objects.get(event_id="q1").quantity == Decimal("12.5")


def test_quantities_and_times_are_stored_exactly_as_sent_whatever_their_notation(org, flavour, clock):
    bandwidth = ProductFactory(code="bandwidth", kind="bandwidth", billing_model="overage")
    Metric.objects.create(code="bandwidth_gb", name="Bandwidth", unit="GB", product=bandwidth)
    events_ingest(items=[ev("e1", "created", organization=org.pk, product="cpu-4", when=at(9, 0))])
    result = events_ingest(items=[
        {"id": "q1", "type": "metered", "resource": "srv-1", "timestamp": "2026-03-10T12:17:30.250000+02:00",
         "metric": "bandwidth_gb", "quantity": "1E+2"},
        ev("q2", "metered", metric="bandwidth_gb", quantity="0.000000000001"),
        ev("q3", "metered", metric="bandwidth_gb", quantity="999999999999999999.999999999999"),
        ev("q4", "metered", metric="bandwidth_gb", quantity=7),
    ])
    assert result.accepted == 4
    stored = {e.event_id: e for e in UsageEvent.objects.filter(event_id__startswith="q")}
    assert stored["q1"].quantity == Decimal("100")
    assert stored["q1"].occurred_at == at(10, 17, 30).replace(microsecond=250000)
    assert stored["q1"].minute == int(at(10, 17).timestamp()) // 60
    assert stored["q2"].quantity == Decimal("0.000000000001")
    assert stored["q3"].quantity == Decimal("999999999999999999.999999999999")
    assert stored["q4"].quantity == Decimal("7")


def test_events_older_than_the_allowed_lateness_are_refused(org, flavour, clock):
    result = events_ingest(items=[ev("e1", "created", organization=org.pk, product="cpu-4",
                                     when=at(9, 0, day=(2026, 3, 1)))])
    assert result.results[0]["status"] == "rejected"
    assert "older than 7 days" in result.results[0]["reason"]


def test_a_stored_event_id_is_always_a_duplicate_whatever_the_item_says_now(org, flavour, clock):
    """Issue 15, item 4: the id check comes first. Before, a stored id re-sent with a
    timestamp after its resource was deleted said `rejected (resource … was deleted)`,
    and one re-sent a week later `rejected` as too old."""
    events_ingest(items=[ev("e1", "created", organization=org.pk, product="cpu-4", when=at(9, 0)),
                         ev("e2", "started", when=at(10, 0)),
                         ev("e3", "deleted", when=at(12, 0))])
    again = events_ingest(items=[ev("e2", "started", when=at(12, 30)),  # after the deletion
                                 {"id": "e3", "type": "exploded"},  # malformed now
                                 ev("e9", "started", when=at(12, 30))])  # new: judged as before
    assert statuses(again) == [("e2", "duplicate"), ("e3", "duplicate"), ("e9", "rejected")]
    assert "was deleted" in again.results[2]["reason"]
    clock.move_to(at(12, 0) + timedelta(days=30))  # far past the 7 days an event may be late
    late = events_ingest(items=[ev("e2", "started", when=at(10, 0))])
    assert statuses(late) == [("e2", "duplicate")]


def test_the_dedup_window_outlives_every_stored_event(settings):
    """A stored event's id is inside the window: a retention that would outlive it is
    refused at start-up (usage.E003)."""
    from usage.checks import check_dedup_window_covers_retention

    assert check_dedup_window_covers_retention() == []
    settings.USAGE_EVENT_RETENTION_DAYS = 400
    assert [e.id for e in check_dedup_window_covers_retention()] == ["usage.E003"]
