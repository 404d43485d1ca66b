"""The history export against a real Gnocchi API (the `gnocchi_peer` fixture, conftest.py).

The expected points come from the rated spans through the ORM (not the export's SQL) and,
for the hours, from the price arithmetic; Gnocchi's values are float64, so each minute
point must be exactly `float()` of our Decimal total, and an hour or day (Gnocchi's sum of
those floats) equal to it within float rounding.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from gnocchi_export import services
from gnocchi_export.models import GnocchiExport
from usage import metering, rollups
from usage.ingest import events_ingest
from usage.models import MeteringRun, RatedUsage, Resource, from_minute
from usage.tests.conftest import at, clock  # noqa: F401  (the frozen clock fixture)
from usage.tests.factories import ProductFactory, add_price

# One worker runs these, so one Gnocchi peer starts per run (make test: --dist loadgroup).
pytestmark = [pytest.mark.django_db, pytest.mark.xdist_group("gnocchi")]

NOW = at(23, 0) + timedelta(minutes=11)  # every run of the history has settled (GNOCCHI_EXPORT_SETTLE)
CPU_RATE = Decimal("1.234567")
STOPPED_RATE = Decimal("0.1")
BACKUP_RATE = Decimal("0.333333")


def ev(event_id, type_, resource, when, **extra):
    return {"id": event_id, "type": type_, "resource": resource, "timestamp": when.isoformat(), **extra}


def meter(until):
    metering.meter_pass(until=until)
    rollups.rollup_pending()


@pytest.fixture
def history(org, clock):  # noqa: F811
    """Two servers from 20:00 to 22:00 on 10 March: `a` starts at 20:17 and stops at 21:40
    (a stopped price), `b` runs from 20:00 with a backup add-on; metered and rolled up."""
    cpu = ProductFactory(code="gx-cpu")
    add_price(cpu, str(CPU_RATE), valid_from=at(0, 0, day=(2026, 1, 1)))
    add_price(cpu, str(STOPPED_RATE), state="stopped", valid_from=at(0, 0, day=(2026, 1, 1)))
    backup = ProductFactory(code="gx-backup", kind="addon", billing_model="addon")
    add_price(backup, str(BACKUP_RATE), valid_from=at(0, 0, day=(2026, 1, 1)))
    result = events_ingest(items=[
        ev("a1", "created", "gx-a", at(20, 0), organization=org.pk, product="gx-cpu"),
        ev("a2", "started", "gx-a", at(20, 17)),
        ev("a3", "stopped", "gx-a", at(21, 40)),
        ev("b1", "created", "gx-b", at(20, 0), organization=org.pk, product="gx-cpu"),
        ev("b2", "started", "gx-b", at(20, 0)),
        ev("b3", "addon_attached", "gx-b", at(20, 0), product="gx-backup"),
    ])
    assert {r["status"] for r in result.results} == {"accepted"}
    meter(at(22, 0))
    return Resource.objects.get(external_id="gx-a"), Resource.objects.get(external_id="gx-b")


def expected_points(resource) -> dict[str, dict]:
    """metric -> {timestamp: float}: our totals per (metric, start minute), via the ORM."""
    totals: dict[str, dict] = defaultdict(lambda: defaultdict(Decimal))
    for row in RatedUsage.objects.filter(resource=resource).select_related("product"):
        totals[f"cost.{row.currency}"][row.start_minute] += row.amount
        if row.product.kind != "addon":
            totals[f"minutes.{row.state}"][row.start_minute] += row.minutes
    return {metric: {from_minute(m): float(v) for m, v in points.items()} for metric, points in totals.items()}


def in_gnocchi(gnocchi, resource, granularity=60) -> dict[str, dict]:
    found = gnocchi.resource.get(services.RESOURCE_TYPE, str(resource.pk))
    return {metric: {ts: value for ts, _, value in gnocchi.metric.get_measures(
                metric, resource_id=str(resource.pk), granularity=granularity, aggregation="sum", refresh=True)}
            for metric in found["metrics"]}


def test_the_export_writes_each_resource_s_cost_and_minutes_and_a_rerun_writes_nothing_new(history, gnocchi,
                                                                                             clock):  # noqa: F811
    a, b = history
    result = services.export_pending(now=NOW)
    assert (result.error, result.resources_created) == ("", 2)
    assert result.watermark == GnocchiExport.objects.get().run_id == MeteringRun.objects.order_by("id").last().pk

    # Resources under our ids, with their organisation and platform id.
    found = gnocchi.resource.get(services.RESOURCE_TYPE, str(a.pk))
    assert (found["original_resource_id"], found["organization_id"], found["external_id"]) == (
        str(a.pk), str(a.organization_id), "gx-a")
    policy = gnocchi.archive_policy.get("cloudbill-billing")
    assert [d["granularity"] for d in policy["definition"]] == ["0:01:00", "1:00:00", "1 day, 0:00:00"]

    # Each minute point is exactly our Decimal total as a float.
    for resource in (a, b):
        assert in_gnocchi(gnocchi, resource) == expected_points(resource)
    minutes_a = in_gnocchi(gnocchi, a)
    assert minutes_a["minutes.running"] == {at(20, 17): 43.0, at(21, 0): 40.0}
    assert minutes_a["minutes.stopped"] == {at(21, 40): 20.0}
    assert in_gnocchi(gnocchi, b)["minutes.running"] == {at(20, 0): 60.0, at(21, 0): 60.0}  # the add-on not counted

    # Hours and days: Gnocchi's sums, our cost per hour and day.
    hourly = in_gnocchi(gnocchi, a, granularity=3600)["cost.USD"]
    assert hourly[at(20, 0)] == pytest.approx(float(CPU_RATE * 43 / 60), rel=1e-12)
    assert hourly[at(21, 0)] == pytest.approx(float(CPU_RATE * 40 / 60 + STOPPED_RATE * 20 / 60), rel=1e-12)
    daily = in_gnocchi(gnocchi, b, granularity=86400)["cost.USD"]
    assert daily == {at(0, 0): pytest.approx(float((CPU_RATE + BACKUP_RATE) * 2), rel=1e-12)}

    again = services.export_pending(now=NOW)
    assert (again.runs, again.measures, again.error) == (0, 0, "")
    assert in_gnocchi(gnocchi, a) == expected_points(a)

    # Sending everything again by hand (the command, from run 0) replaces each point by itself.
    out = StringIO()
    clock.move_to(NOW)
    call_command("gnocchi_export", "--from-run", "0", stdout=out)
    assert f"measures={result.measures} resources_created=0 watermark={result.watermark}" in out.getvalue()
    assert in_gnocchi(gnocchi, a, granularity=3600)["cost.USD"] == hourly
    with pytest.raises(CommandError, match="only moves back"):
        call_command("gnocchi_export", "--from-run", str(result.watermark + 1))


def test_a_batch_sent_again_after_our_rollback_doubles_nothing(history, gnocchi):
    a, b = history

    class Crash(Exception):
        pass

    with pytest.raises(Crash), transaction.atomic():  # Gnocchi accepted, then our commit is lost
        assert services.export_pending(now=NOW).measures > 0
        raise Crash
    assert not GnocchiExport.objects.exists()
    hourly_before = in_gnocchi(gnocchi, b, granularity=3600)

    again = services.export_pending(now=NOW)
    assert again.measures > 0 and again.resources_created == 0  # sent again; the resources were there
    assert in_gnocchi(gnocchi, b, granularity=3600) == hourly_before
    assert in_gnocchi(gnocchi, b) == expected_points(b)


def test_gnocchi_down_mid_export_then_up_resumes_from_the_watermark(history, gnocchi, gnocchi_peer, settings,
                                                                    monkeypatch):
    a, b = history
    settings.GNOCCHI_EXPORT_RUNS_PER_BATCH = 1
    runs_with_rows = list(MeteringRun.objects.filter(rows__gt=0).order_by("id").values_list("id", flat=True))
    assert len(runs_with_rows) == 2  # 20:00 and 21:00, one closing run each

    real_push = services.push
    pushed: list[int] = []

    def push_then_go_down(client, series):
        if pushed:
            gnocchi_peer.stop()
        sent = real_push(client, series)
        pushed.append(sent[0])
        return sent

    monkeypatch.setattr(services, "push", push_then_go_down)
    down = services.export_pending(now=NOW)
    assert down.error and len(pushed) == 1
    assert GnocchiExport.objects.get().run_id == down.watermark
    assert runs_with_rows[0] <= down.watermark < runs_with_rows[1]

    gnocchi_peer.start()
    still_down_hours = in_gnocchi(gnocchi, a)
    assert still_down_hours["minutes.running"] == {at(20, 17): 43.0}  # only the first hour went through

    monkeypatch.setattr(services, "push", real_push)
    up = services.export_pending(now=NOW)
    assert up.error == "" and up.watermark == MeteringRun.objects.order_by("id").last().pk
    # The second export sent the second hour's points only, not the first hour's again.
    assert up.measures == sum(1 for r in (a, b) for p in expected_points(r).values() for ts in p if ts >= at(21, 0))
    for resource in (a, b):
        assert in_gnocchi(gnocchi, resource) == expected_points(resource)


def test_a_late_event_s_correction_replaces_the_points_it_changes(history, gnocchi, clock):  # noqa: F811
    a, b = history
    services.export_pending(now=NOW)
    # b's stop at 21:30 arrives after both hours were exported: the 21:00 hour is reversed
    # and rated again; its points are sent with their new totals, which replace the old.
    events_ingest(items=[ev("b4", "stopped", "gx-b", at(21, 30))])
    meter(at(22, 1))
    clock.move_to(NOW + timedelta(minutes=15))
    corrected = services.export_pending(now=NOW + timedelta(minutes=15))
    assert corrected.error == "" and corrected.measures > 0

    points = in_gnocchi(gnocchi, b)
    assert points == expected_points(b)
    assert points["minutes.running"] == {at(20, 0): 60.0, at(21, 0): 30.0}
    assert points["minutes.stopped"] == {at(21, 30): 30.0}
    hourly = in_gnocchi(gnocchi, b, granularity=3600)["cost.USD"]
    assert hourly[at(21, 0)] == pytest.approx(float((CPU_RATE + BACKUP_RATE) / 2 + STOPPED_RATE / 2), rel=1e-12)


def test_nothing_is_exported_past_a_run_that_is_not_rolled_up_or_not_settled(history):
    runs = list(MeteringRun.objects.order_by("id"))
    assert services.pending_runs(after=0, now=NOW, limit=1000) == [r.pk for r in runs]
    assert services.pending_runs(after=0, now=at(23, 5), limit=1000) == []  # created at 23:00, settles at 23:10
    MeteringRun.objects.filter(pk=runs[1].pk).update(rolled_up_at=None)
    assert services.pending_runs(after=0, now=NOW, limit=1000) == [runs[0].pk]
