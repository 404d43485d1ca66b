from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from pricing.models import ResourceState
from usage import metering, services
from usage.models import (
    MeteringChunk,
    RatedKind,
    RatedUsage,
    ResourceMonthTotal,
    StateSource,
    UsageAccrual,
    UsageDaily,
    UsageHourly,
)
from usage.rollups import rollup_pending
from usage.tests.conftest import at, billed, ledger
from usage.tests.factories import ProductFactory, add_price

pytestmark = pytest.mark.django_db


def start_server(org, product, *, created, started, external_id="srv-1"):
    resource = services.resource_create(organization=org, external_id=external_id, product=product, at=created,
                                        source=StateSource.EVENT)
    return services.resource_change_state(resource=resource, state=ResourceState.RUNNING, at=started,
                                          source=StateSource.EVENT)


def stop(resource, when, state=ResourceState.STOPPED):
    return services.resource_change_state(resource=resource, state=state, at=when, source=StateSource.EVENT)


@pytest.fixture
def flavour(db):
    product = ProductFactory(code="cpu-4")
    add_price(product, "1.20", valid_from=at(0, 0, day=(2026, 1, 1)))
    return product


def test_server_started_1017_and_stopped_1342_is_billed_exactly_those_minutes(org, flavour, clock):
    server = start_server(org, flavour, created=at(10, 15), started=at(10, 17, 40))
    stop(server, at(13, 42, 5))

    metering.meter_pass(until=at(14, 0))

    # 10:17 → 13:42 is 205 minutes at $1.20/hour ($0.02 a minute).
    assert billed(resource=server) == (Decimal("4.10"), 205)
    first = RatedUsage.objects.filter(resource=server).order_by("start_minute").first()
    assert first.start == at(10, 17) and first.state == ResourceState.RUNNING
    last = RatedUsage.objects.filter(resource=server).order_by("start_minute").last()
    assert last.end == at(13, 42)
    # Rows never cross a clock hour: 10:17-11, 11-12, 12-13, 13-13:42.
    assert [r.minutes for r in RatedUsage.objects.filter(resource=server).order_by("start_minute")] == [43, 60, 60, 42]


def test_a_price_change_at_noon_splits_the_charge(org, clock):
    product = ProductFactory()
    old = add_price(product, "1.20", valid_from=at(0, 0, day=(2026, 1, 1)), valid_to=at(12, 0))
    new = add_price(product, "2.40", valid_from=at(12, 0))
    server = start_server(org, product, created=at(10, 15), started=at(10, 17))
    stop(server, at(13, 42))

    metering.meter_pass(until=at(14, 0))

    assert billed(resource=server, price_id=old.pk) == (Decimal("2.06"), 103)  # 10:17-12:00 at 0.02
    assert billed(resource=server, price_id=new.pk) == (Decimal("4.08"), 102)  # 12:00-13:42 at 0.04
    assert billed(resource=server) == (Decimal("6.14"), 205)


def test_hibernated_resources_pay_their_hibernated_rate(org, flavour, clock):
    add_price(flavour, "0.30", state=ResourceState.HIBERNATED, valid_from=at(0, 0, day=(2026, 1, 1)))
    server = start_server(org, flavour, created=at(9, 0), started=at(9, 0))
    stop(server, at(10, 0), state=ResourceState.HIBERNATED)
    stop(server, at(12, 0), state=ResourceState.RUNNING)
    stop(server, at(12, 30))  # stopped has no price: free

    metering.meter_pass(until=at(14, 0))

    assert billed(resource=server, state=ResourceState.HIBERNATED) == (Decimal("0.60"), 120)
    assert billed(resource=server, state=ResourceState.RUNNING) == (Decimal("1.80"), 90)
    assert billed(resource=server, state=ResourceState.STOPPED) == (Decimal("0"), 0)


def test_the_monthly_cap_holds_however_the_month_is_metered(org, clock, settings):
    product = ProductFactory()
    add_price(product, "1.20", valid_from=at(0, 0, day=(2026, 1, 1)), monthly_cap="5.00")
    server = start_server(org, product, created=at(8, 0), started=at(8, 0))

    # 8:00 → 13:00 minute by minute for the first hour, then one catch-up.
    for minute in range(1, 61):
        metering.meter_pass(until=at(8, 0) + minute * (at(8, 1) - at(8, 0)))
    metering.meter_pass(until=at(13, 0))

    # Five hours at $1.20 would be $6.00; the month is capped at $5.00.
    assert billed(resource=server) == (Decimal("5.00"), 300)
    # The cap is reached at 12:10 (5.00 / 0.02 = 250 minutes): the 12:00 hour costs 10 minutes' worth.
    assert billed(resource=server, start_minute__gte=metering.to_minute(at(12, 0))) == (Decimal("0.20"), 60)


def test_an_outage_of_six_hours_then_meter_equals_metering_every_minute(org, other_org, clock, settings):
    odd = ProductFactory()
    add_price(odd, "2.06", valid_from=at(0, 0, day=(2026, 1, 1)), valid_to=at(12, 0))
    add_price(odd, "2.17", valid_from=at(12, 0))
    add_price(odd, "0.31", state=ResourceState.HIBERNATED, valid_from=at(0, 0, day=(2026, 1, 1)))
    a = start_server(org, odd, created=at(9, 58), started=at(10, 3), external_id="a")
    b = start_server(other_org, odd, created=at(9, 0), started=at(9, 0), external_id="b")
    stop(a, at(11, 11), state=ResourceState.HIBERNATED)
    stop(a, at(13, 37), state=ResourceState.RUNNING)
    stop(b, at(15, 59, 59))

    metering.meter_pass(until=at(10, 0))
    for minute in range(1, 6 * 60 + 1):
        metering.meter_pass(until=at(10, 0) + minute * (at(10, 1) - at(10, 0)))
    every_minute = ledger()
    totals_every_minute = billed()

    RatedUsage.objects.all().delete()
    MeteringChunk.objects.all().delete()
    metering.meter_pass(until=at(10, 0))
    metering.meter_pass(until=at(16, 0))  # six hours at once, in one-hour slices

    assert ledger() == every_minute
    assert billed() == totals_every_minute
    # a: running 10:03-11:11, hibernated to 13:37, running to 16:00; b: running 9:00-15:59.
    assert totals_every_minute[1] == (68 + 146 + 143) + 419
    assert RatedUsage.objects.filter(kind=RatedKind.CHARGE).count() < 30


def test_a_crash_after_the_first_chunk_then_a_rerun_gives_the_same_charges(org, other_org, flavour, clock,
                                                                             monkeypatch):
    assert org.pk % 2 != other_org.pk % 2
    start_server(org, flavour, created=at(9, 0), started=at(9, 30), external_id="a")
    start_server(other_org, flavour, created=at(9, 0), started=at(9, 45), external_id="b")
    metering.meter_pass(until=at(9, 0))
    expected_minutes = (16 * 60 - 9 * 60 - 30) + (16 * 60 - 9 * 60 - 45)

    real_rate = metering._rate
    calls = []

    def crash_on_second_chunk(**kwargs):
        rows = real_rate(**kwargs)
        calls.append(kwargs["chunk"])
        if len(set(calls)) == 2:
            raise RuntimeError("worker killed")
        return rows

    monkeypatch.setattr(metering, "_rate", crash_on_second_chunk)
    with pytest.raises(RuntimeError):
        metering.meter_pass(until=at(16, 0))
    first_chunk = calls[0]
    assert set(RatedUsage.objects.values_list("organization_id", flat=True)) == {
        o.pk for o in (org, other_org) if o.pk % 2 == first_chunk}
    monkeypatch.setattr(metering, "_rate", real_rate)

    metering.meter_pass(until=at(16, 0))

    assert billed() == (Decimal("0.02") * expected_minutes, expected_minutes)
    assert set(MeteringChunk.objects.values_list("watermark_minute", flat=True)) == {metering.to_minute(at(16, 0))}


def test_a_late_stop_is_corrected_with_a_reversal_and_never_a_silent_loss(org, flavour, clock):
    server = start_server(org, flavour, created=at(9, 0), started=at(10, 0))
    metering.meter_pass(until=at(14, 0))
    assert billed(resource=server) == (Decimal("4.80"), 240)

    stop(server, at(11, 30))  # arrives at 14:00+ but happened at 11:30
    metering.meter_pass(until=at(14, 1))

    assert billed(resource=server) == (Decimal("1.80"), 90)
    reversals = RatedUsage.objects.filter(resource=server, kind=RatedKind.REVERSAL)
    assert reversals.exists() and all(r.corrects_id and r.amount < 0 for r in reversals)
    # Running it again changes nothing: the corrections were made once.
    metering.meter_pass(until=at(14, 1))
    assert billed(resource=server) == (Decimal("1.80"), 90)


def test_rollups_add_each_run_once(org, flavour, clock):
    server = start_server(org, flavour, created=at(9, 0), started=at(10, 17))
    metering.meter_pass(until=at(12, 0))
    stop(server, at(11, 0))
    metering.meter_pass(until=at(12, 1))

    assert rollup_pending() > 0
    assert rollup_pending() == 0
    hourly = {h.hour: (h.amount, h.minutes) for h in UsageHourly.objects.filter(resource=server)}
    assert hourly == {at(10, 0): (Decimal("0.86"), 43), at(11, 0): (Decimal("0"), 0)}
    assert [(d.day, d.amount, d.minutes) for d in UsageDaily.objects.filter(resource=server)] == [
        (at(0, 0).date(), Decimal("0.86"), 43)]


def test_a_run_shorter_than_the_minimum_billable_time_is_billed_the_minimum_once(org, clock):
    gpu = ProductFactory()
    add_price(gpu, "6.00", valid_from=at(0, 0, day=(2026, 1, 1)), min_billable_minutes=10)
    short = start_server(org, gpu, created=at(10, 0), started=at(10, 0), external_id="short")
    stop(short, at(10, 3))
    long_run = start_server(org, gpu, created=at(10, 0), started=at(10, 0), external_id="long")
    stop(long_run, at(10, 30))

    for minute in range(0, 61):
        metering.meter_pass(until=at(10, 0) + minute * (at(10, 1) - at(10, 0)))

    # 3 minutes run + 7 minimum at $0.10 a minute; the long run is simply 30 minutes.
    assert billed(resource=short) == (Decimal("1.00"), 10)
    assert billed(resource=short, kind=RatedKind.MINIMUM) == (Decimal("0.70"), 7)
    assert billed(resource=long_run) == (Decimal("3.00"), 30)

    # A late stop: billed 30 minutes first, then corrected to 3 minutes and the 7-minute minimum.
    late = start_server(org, gpu, created=at(10, 0), started=at(10, 0), external_id="late")
    metering.meter_pass(until=at(10, 30))
    late_before = RatedUsage.objects.filter(resource=late).count()
    stop(late, at(10, 3))
    metering.meter_pass(until=at(10, 31))
    assert late_before > 0
    assert billed(resource=late) == (Decimal("1.00"), 10)
    assert billed(resource=late, kind=RatedKind.MINIMUM) == (Decimal("0.70"), 7)


def test_the_minimum_billable_time_applies_to_a_run_not_to_each_piece_of_it(org, clock):
    """A resize does not end a run: a server resized after 3 minutes and stopped at 30 is
    a 30-minute run, no minimum. A run of 5 minutes across a resize gets one minimum, at
    the rate of its last minute. Hibernating ends a run; running again starts a new one."""
    small, big = ProductFactory(), ProductFactory()
    add_price(small, "6.00", valid_from=at(0, 0, day=(2026, 1, 1)), min_billable_minutes=10)
    add_price(big, "12.00", valid_from=at(0, 0, day=(2026, 1, 1)), min_billable_minutes=10)
    resized = start_server(org, small, created=at(10, 0), started=at(10, 0), external_id="resized")
    services.resource_resize(resource=resized, product=big, at=at(10, 3))
    stop(resized, at(10, 30))
    brief = start_server(org, small, created=at(10, 0), started=at(10, 0), external_id="brief")
    services.resource_resize(resource=brief, product=big, at=at(10, 2))
    stop(brief, at(10, 5))
    twice = start_server(org, small, created=at(10, 0), started=at(10, 0), external_id="twice")
    stop(twice, at(10, 3), state=ResourceState.HIBERNATED)
    services.resource_change_state(resource=twice, state=ResourceState.RUNNING, at=at(10, 20),
                                   source=StateSource.EVENT)
    stop(twice, at(10, 50))

    for minute in range(0, 61, 7):  # catch-up in uneven steps: the same result as every minute
        metering.meter_pass(until=at(10, 0) + minute * (at(10, 1) - at(10, 0)))
    metering.meter_pass(until=at(11, 0))

    assert billed(resource=resized, kind=RatedKind.MINIMUM) == (Decimal("0"), 0)
    assert billed(resource=resized) == (Decimal("0.30") + Decimal("5.40"), 30)  # 3 min at $6/h, 27 at $12/h
    assert billed(resource=brief, kind=RatedKind.MINIMUM) == (Decimal("1.00"), 5)  # 5 missing minutes at $12/h
    assert billed(resource=twice, kind=RatedKind.MINIMUM) == (Decimal("0.70"), 7)  # the first run only



def _minute_by_minute(since, minutes):
    for minute in range(1, minutes + 1):
        metering.meter_pass(until=since + minute * (at(0, 1) - at(0, 0)))


def test_a_steady_resource_writes_nothing_per_minute(org, flavour, clock):
    """Rate spans, not minutes: a server at a constant price and state adds no rated row,
    no rollup row and no month total while its hour is open; the watermark still moves."""
    capped = ProductFactory()
    add_price(capped, "1.20", valid_from=at(0, 0, day=(2026, 1, 1)), monthly_cap="50.00")
    start_server(org, flavour, created=at(9, 0), started=at(9, 0))
    start_server(org, capped, created=at(9, 0), started=at(9, 0), external_id="capped")
    metering.meter_pass(until=at(10, 5))
    rollup_pending()

    def stored():
        return (RatedUsage.objects.count(), UsageHourly.objects.count(), UsageDaily.objects.count(),
                list(ResourceMonthTotal.objects.values_list("amount", flat=True)))

    before = stored()
    for minute in (6, 7, 8):
        metering.meter_pass(until=at(10, minute))
        rollup_pending()
        assert stored() == before
    assert set(MeteringChunk.objects.values_list("watermark_minute", flat=True)) == {metering.to_minute(at(10, 8))}


def test_at_most_one_rated_row_per_resource_product_state_and_price_per_hour_at_every_age(org, flavour, clock):
    """Metered minute by minute for two hours, with a late stop inside a closed hour and a
    late hibernation inside the open one: never two live rows for the same resource,
    product, state, price and hour, and the amounts are the history's."""
    add_price(flavour, "0.30", state=ResourceState.HIBERNATED, valid_from=at(0, 0, day=(2026, 1, 1)))
    steady = start_server(org, flavour, created=at(9, 0), started=at(9, 0), external_id="steady")
    changing = start_server(org, flavour, created=at(9, 0), started=at(9, 0), external_id="changing")
    metering.meter_pass(until=at(9, 0))
    _minute_by_minute(at(9, 0), 70)  # to 10:10
    stop(changing, at(10, 5), state=ResourceState.HIBERNATED)  # late, inside the open hour
    stop(changing, at(9, 40))  # late, inside the closed 9:00 hour
    _minute_by_minute(at(10, 10), 50)  # to 11:00

    reversed_ids = RatedUsage.objects.filter(kind=RatedKind.REVERSAL).values("corrects_id")
    live = RatedUsage.objects.exclude(kind=RatedKind.REVERSAL).exclude(id__in=reversed_ids)
    per_hour = Counter((r["resource_id"], r["product_id"], r["state"], r["price_id"], r["start_minute"] // 60)
                       for r in live.values("resource_id", "product_id", "state", "price_id", "start_minute"))
    assert per_hour and max(per_hour.values()) == 1
    assert live.filter(resource=steady).count() == 2  # 9:00 and 10:00
    assert billed(resource=steady) == (Decimal("2.40"), 120)
    # Running 9:00-9:40, stopped (free) to 10:05, hibernated to 11:00 at $0.30/h.
    assert billed(resource=changing) == (Decimal("0.80") + Decimal("0.275"), 40 + 55)


def test_staggered_hour_closes_store_what_a_catch_up_stores(org, other_org, flavour, clock):
    """The beat task closes chunk k's hour k·60/n minutes after it ends (the hour's spans
    are written a chunk at a time). Minute by minute that way, with a late stop inside a
    still-open hour, the stored spans equal one catch-up's, and the open minutes are
    accrued per organisation."""
    assert org.pk % 2 != other_org.pk % 2
    odd, even = (org, other_org) if org.pk % 2 else (other_org, org)  # chunks 1 (closes at :30) and 0
    a = start_server(odd, flavour, created=at(9, 0), started=at(9, 0), external_id="a")
    start_server(even, flavour, created=at(9, 0), started=at(9, 0), external_id="b")
    metering.meter_pass(until=at(9, 0))
    for minute in range(1, 166):  # 9:01 → 11:45
        until = metering.to_minute(at(9, 0)) + minute
        if until == metering.to_minute(at(11, 10)):
            stop(a, at(10, 50))  # late; chunk 1's 10:00 hour is still open until 11:30
        for chunk in (0, 1):
            metering.meter_chunk(chunk=chunk, until=until, stagger=True)
    staggered = ledger()
    marks = dict(MeteringChunk.objects.values_list("number", "rated_minute"))
    assert marks == {0: metering.to_minute(at(11, 0)), 1: metering.to_minute(at(11, 0))}
    per_hour = Counter((r.resource_id, r.product_id, r.state, r.price_id, r.start_minute // 60)
                       for r in RatedUsage.objects.exclude(kind=RatedKind.REVERSAL))
    assert max(per_hour.values()) == 1  # the late stop came while its hour was open: no correction
    assert not RatedUsage.objects.filter(kind=RatedKind.REVERSAL).exists()
    accrued = UsageAccrual.objects.filter(start_minute__gte=metering.to_minute(at(11, 0)))
    assert sum(x.amount for x in accrued.filter(organization=even)) == Decimal("0.02") * 45

    RatedUsage.objects.all().delete()
    MeteringChunk.objects.all().delete()
    metering.meter_pass(until=at(9, 0))
    metering.meter_pass(until=at(11, 0))
    assert ledger() == staggered
    assert billed(resource=a) == (Decimal("0.02") * 110, 110)  # 9:00-10:50


@pytest.mark.parametrize("bound, expect_prepared", [(32, True), (0, False)])
def test_the_rating_statements_are_prepared_only_for_small_chunks_and_rate_alike(
        org, flavour, clock, monkeypatch, bound, expect_prepared):
    """A generic plan assumes about ten ids in the chunk's array: prepared for chunks
    of up to PREPARED_MAX_ORGS organisations, planned for their ids above (the benchmark's
    100k-resource hour close took twice as long on the generic plan)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(metering, "PREPARED_MAX_ORGS", bound)
    server = start_server(org, flavour, created=at(10, 15), started=at(10, 17, 40))
    stop(server, at(13, 42, 5))
    with CaptureQueriesContext(connection) as sent:
        metering.meter_pass(until=at(14, 0))
    assert billed(resource=server) == (Decimal("4.10"), 205)
    executed = [q["sql"] for q in sent.captured_queries if "EXECUTE cb_" in q["sql"]]
    assert bool(executed) is expect_prepared
