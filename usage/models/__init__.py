"""Resources, their history as state intervals, events, and rated usage.

One package, four modules, each named for what it holds:

- `resources`: `Resource`, `StateInterval`, `AddonAttachment`, and the epoch-minute
  helpers `to_minute` / `from_minute`;
- `events`: `UsageEvent`, `EventKey` (the dedup window), `Metric` and the event types;
- `metering_state`: `MeteringChunk` (watermarks), `MeteringRun`, `Recheck`;
- `rated_usage`: `RatedUsage`, `UsageAccrual`, `AccrualRate`, `ResourceMonthTotal`, the rollups, `ImportedUsage`.

Every model is imported here, so Django's app registry and the migrations see the app
exactly as before and callers keep `from usage.models import RatedUsage`. The resource
states are pricing's (`pricing.models.ResourceState`: a price is per state) and are
re-exported here too, as they always were, for the code that reads resource states.

Invariants (stated in full in each module):
- `StateInterval.end_minute`, `eff_state` and `eff_product` are derived by
  `services.intervals_recompute` and never written elsewhere.
- `RatedUsage` is append-only: a late event reverses and re-rates, never edits; spans
  are stored when their hour closes (at most one per resource, product, state and
  price per hour), the open hour is charged per organisation (`UsageAccrual`).
- Rollups are sums of rated rows, added once per metering run.
"""

from pricing.models import ResourceState
from usage.models.events import EVENT_STATE, Aggregation, EventKey, EventType, Metric, UsageEvent
from usage.models.metering_state import MeteringChunk, MeteringRun, Recheck, RunKind
from usage.models.projects import Project
from usage.models.rated_usage import (
    AccrualRate,
    ImportedUsage,
    RatedKind,
    RatedUsage,
    ResourceMonthTotal,
    UsageAccrual,
    UsageDaily,
    UsageDayTotal,
    UsageHourly,
    UsageOrgMonth,
)
from usage.models.resources import (
    AddonAttachment,
    Resource,
    ResourceKind,
    StateInterval,
    StateSource,
    from_minute,
    to_minute,
)

__all__ = [
    "EVENT_STATE",
    "AccrualRate",
    "AddonAttachment",
    "Aggregation",
    "EventKey",
    "EventType",
    "ImportedUsage",
    "MeteringChunk",
    "MeteringRun",
    "Project",
    "Metric",
    "RatedKind",
    "RatedUsage",
    "Recheck",
    "Resource",
    "ResourceKind",
    "ResourceMonthTotal",
    "ResourceState",
    "RunKind",
    "StateInterval",
    "StateSource",
    "UsageAccrual",
    "UsageDaily",
    "UsageDayTotal",
    "UsageEvent",
    "UsageHourly",
    "UsageOrgMonth",
    "from_minute",
    "to_minute",
]
