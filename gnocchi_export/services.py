"""History export to Gnocchi: per-resource cost and usage series from the rated spans.

What is sent (docs/usage.md, "History export to Gnocchi"): for each resource, one point
per minute at which one of its rated spans starts, on two kinds of metric:

- `cost.<CURRENCY>`: the sum of the `amount` of every rated row of the resource that
  starts at that minute (every product, add-ons included, every state; reversals,
  corrections and minimums net in);
- `minutes.<state>`: the billed minutes of the resource's own product (add-ons are not
  counted again) in that state starting at that minute.

Each point is the total of *every* row at its (resource, minute) that we hold, not only
the rows of the runs being exported, so a late event's correction sends the key again with
its new total and Gnocchi, which keeps the last value sent for a timestamp, replaces the
old one. That makes every send idempotent: sending a batch twice writes the same values
at the same timestamps. The archive policy sums the points per minute, hour and day, so
the hourly and daily aggregates are the resource's cost per hour and day.

Decimals become floats at exactly one place, `_float`, when the request body is built:
Gnocchi stores float64. Our figures (and invoices) stay exact Decimals in PostgreSQL;
Gnocchi's are for charts and capacity work, exact to ~15 significant digits.

Which runs: metering runs in id order after the watermark (`GnocchiExport.run_id`),
rolled up and created more than `GNOCCHI_EXPORT_SETTLE` ago (by then a run's transaction
has committed or never will: metering and rollup tasks are killed after 300 s); the
export stops at the first run that is not, so it never steps over a run still to come.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from gnocchi_export.models import GnocchiExport
from usage.models import MeteringRun, Resource, from_minute

log = logging.getLogger(__name__)

RESOURCE_TYPE = "cloudbill_resource"
RESOURCE_ATTRIBUTES = {
    "organization_id": {"type": "string", "required": False, "max_length": 20},
    "external_id": {"type": "string", "required": False, "max_length": 200},
    "kind": {"type": "string", "required": False, "max_length": 12},
}
# Raw points are kept for this many of the coarsest periods (days) to recompute the
# aggregates when a point changes: longer than USAGE_MAX_EVENT_AGE (7 days), the oldest
# minute a correction can reach, plus the settle delay.
BACK_WINDOW_DAYS = 10


def archive_policy_definition(name: str) -> dict[str, Any]:
    """Sums per minute (14 days), hour (400 days, as our hourly rollups) and day (10 years)."""
    return {
        "name": name,
        "back_window": BACK_WINDOW_DAYS,
        "aggregation_methods": ["sum"],
        "definition": [
            {"granularity": "1m", "timespan": "14d"},
            {"granularity": "1h", "timespan": "400d"},
            {"granularity": "1d", "timespan": "3650d"},
        ],
    }


# Every (resource, start minute) that a run wrote, totalled over every row at that key.
_MEASURES = """
WITH keys AS (
    SELECT DISTINCT resource_id, start_minute FROM usage_ratedusage WHERE run_id = ANY(%(runs)s)
)
SELECT u.resource_id, u.start_minute, 'cost.' || u.currency, SUM(u.amount)
FROM usage_ratedusage u
JOIN keys k ON k.resource_id = u.resource_id AND k.start_minute = u.start_minute
GROUP BY 1, 2, 3
UNION ALL
SELECT u.resource_id, u.start_minute, 'minutes.' || u.state, SUM(u.minutes)
FROM usage_ratedusage u
JOIN keys k ON k.resource_id = u.resource_id AND k.start_minute = u.start_minute
JOIN pricing_product p ON p.id = u.product_id
WHERE p.kind <> 'addon'
GROUP BY 1, 2, 3
ORDER BY 1, 3, 2
"""

Series = dict[int, dict[str, list[tuple[int, Decimal | int]]]]  # resource -> metric -> [(minute, total)]


@dataclass
class ExportResult:
    runs: int = 0
    measures: int = 0
    resources_created: int = 0
    watermark: int = 0
    error: str = ""


def make_client() -> Any:
    """A gnocchiclient for `GNOCCHI_EXPORT_URL`, basic or noauth (Gnocchi's own modes)."""
    from gnocchiclient import auth, client
    from keystoneauth1 import session

    url = settings.GNOCCHI_EXPORT_URL
    user = settings.GNOCCHI_EXPORT_USER
    plugin: Any
    if settings.GNOCCHI_EXPORT_AUTH == "noauth":
        plugin = auth.GnocchiNoAuthPlugin(user_id=user, project_id=user, roles="admin", endpoint=url)
    else:
        plugin = auth.GnocchiBasicPlugin(user=user, endpoint=url)
    return client.Client("1", session=session.Session(auth=plugin, timeout=settings.GNOCCHI_EXPORT_TIMEOUT))


def ensure_schema(gnocchi: Any) -> None:
    """The archive policy and the resource type, created if missing (idempotent; one that
    exists is left as it is)."""
    from gnocchiclient import exceptions

    policy = settings.GNOCCHI_EXPORT_ARCHIVE_POLICY
    try:
        gnocchi.archive_policy.get(policy)
    except exceptions.NotFound:
        try:
            gnocchi.archive_policy.create(archive_policy_definition(policy))
        except exceptions.ArchivePolicyAlreadyExists:
            pass
    try:
        gnocchi.resource_type.get(RESOURCE_TYPE)
    except exceptions.NotFound:
        try:
            gnocchi.resource_type.create({"name": RESOURCE_TYPE, "attributes": RESOURCE_ATTRIBUTES})
        except exceptions.ResourceTypeAlreadyExists:
            pass


def pending_runs(*, after: int, now: datetime, limit: int) -> list[int]:
    """The runs after `after`, in id order, up to the first one that may still change:
    not yet rolled up, or created less than the settle delay ago."""
    cutoff = now - settings.GNOCCHI_EXPORT_SETTLE
    out = []
    for run_id, created_at, rolled_up_at in (
        MeteringRun.objects.filter(id__gt=after).order_by("id").values_list("id", "created_at", "rolled_up_at")[:limit]
    ):
        if rolled_up_at is None or created_at >= cutoff:
            break
        out.append(run_id)
    return out


def measures_for_runs(runs: list[int]) -> Series:
    series: Series = defaultdict(lambda: defaultdict(list))
    with connection.cursor() as cursor:
        cursor.execute(_MEASURES, {"runs": runs})
        for resource_id, minute, metric, total in cursor.fetchall():
            series[resource_id][metric].append((minute, total))
    return series


def _float(value: Decimal | int) -> float:
    """The one place our Decimals become Gnocchi's float64."""
    return float(value)


def _body(series: Series, resource_ids: Iterable[int]) -> dict[str, Any]:
    policy = settings.GNOCCHI_EXPORT_ARCHIVE_POLICY
    body: dict[str, Any] = {}
    for resource_id in resource_ids:
        body[str(resource_id)] = {
            metric: {
                "archive_policy_name": policy,
                "unit": metric.removeprefix("cost.") if metric.startswith("cost.") else "min",
                "measures": [{"timestamp": from_minute(m).isoformat(), "value": _float(v)} for m, v in points],
            }
            for metric, points in series[resource_id].items()
        }
    return body


def _create_resources(gnocchi: Any, resource_ids: Iterable[int]) -> int:
    """Our resources as Gnocchi resources of type `cloudbill_resource`, with our id as their
    id (Gnocchi keeps it as `original_resource_id`; its own id is a UUID made from it)."""
    from gnocchiclient import exceptions

    created = 0
    for resource_id, organization_id, external_id, kind in Resource.objects.filter(id__in=list(resource_ids)).values_list(
        "id", "organization_id", "external_id", "kind"
    ):
        try:
            gnocchi.resource.create(RESOURCE_TYPE, {"id": str(resource_id), "organization_id": str(organization_id),
                                                    "external_id": external_id, "kind": kind})
            created += 1
        except exceptions.ResourceAlreadyExists:
            pass
    return created


def push(gnocchi: Any, series: Series) -> tuple[int, int]:
    """Send the series, `GNOCCHI_EXPORT_RESOURCES_PER_REQUEST` resources a request; a
    resource Gnocchi does not know yet is created and its request sent again. Returns
    (measures, resources created); raises on any failure (nothing is marked then)."""
    from gnocchiclient import exceptions

    ids = sorted(series)
    step = settings.GNOCCHI_EXPORT_RESOURCES_PER_REQUEST
    measures = created = 0
    for i in range(0, len(ids), step):
        chunk = ids[i:i + step]
        body = _body(series, chunk)
        try:
            gnocchi.metric.batch_resources_metrics_measures(body, create_metrics=True)
        except exceptions.BadRequest as exc:
            if not (isinstance(exc.message, dict) and exc.message.get("cause") == "Unknown resources"):
                raise
            unknown = [int(r["original_resource_id"]) for r in exc.message.get("detail", [])]
            created += _create_resources(gnocchi, unknown)
            gnocchi.metric.batch_resources_metrics_measures(body, create_metrics=True)
        measures += sum(len(m["measures"]) for metrics in body.values() for m in metrics.values())
    return measures, created


def export_pending(*, name: str = "default", gnocchi: Any = None, now: datetime | None = None,
                   max_batches: int | None = None) -> ExportResult:
    """Export every settled run after the watermark, a batch of runs at a time; each batch's
    watermark moves only once Gnocchi accepted all of it. Gnocchi down: the batch stays
    pending, the next call sends it again."""
    result = ExportResult()
    if gnocchi is None:
        if not settings.GNOCCHI_EXPORT_URL:
            result.error = "GNOCCHI_EXPORT_URL is not set"
            return result
        gnocchi = make_client()
    now = now or timezone.now()
    state, _ = GnocchiExport.objects.get_or_create(name=name)
    result.watermark = state.run_id
    try:
        ensure_schema(gnocchi)
    except Exception as exc:  # Gnocchi down or refusing: nothing sent, nothing marked
        log.warning("gnocchi export %s: schema: %s", name, exc)
        result.error = str(exc)
        return result
    batches = 0
    while max_batches is None or batches < max_batches:
        batches += 1
        runs = pending_runs(after=state.run_id, now=now, limit=settings.GNOCCHI_EXPORT_RUNS_PER_BATCH)
        if not runs:
            break
        series = measures_for_runs(runs)
        try:
            sent, created = push(gnocchi, series) if series else (0, 0)
        except Exception as exc:  # the watermark stays: the next call sends this batch again
            log.warning("gnocchi export %s: runs %s-%s: %s", name, runs[0], runs[-1], exc)
            result.error = str(exc)
            break
        moved = GnocchiExport.objects.filter(pk=state.pk, run_id=state.run_id).update(
            run_id=runs[-1], exported_at=timezone.now(), measures=F("measures") + sent)
        if not moved:  # another export moved it meanwhile; it carries on from there
            break
        state.run_id = runs[-1]
        result.runs += len(runs)
        result.measures += sent
        result.resources_created += created
        result.watermark = state.run_id
    return result
