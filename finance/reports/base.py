"""The contract every report keeps, so one console view, one CSV writer, one API view
and one benchmark serve them all.

- A report is computed for one currency (never adding currencies together) over a
  half-open range of UTC days ``[start, end)`` at a grain of ``day`` or ``month``.
- Its figures are ``Decimal`` (money at the currency's minor unit unless the column says
  ``rate``); counts are ``int``. No floats anywhere, the chart's values included.
- ``rows`` is the table (and the CSV, and the API's ``results``): a list of plain dicts
  keyed by the columns' ``key``. ``chart`` is what the chart draws, derived from the
  same figures (a chart never shows a number the table cannot explain).
- Computing a report reads; it never writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

Grain = Literal["day", "month"]
ColumnKind = Literal["text", "date", "month", "money", "rate", "quantity", "count", "percent", "days"]
ChartKind = Literal["bar", "stacked-bar", "line"]


class ReportError(ValueError):
    """Parameters a report cannot answer (shown as a form error / a 400)."""


@dataclass(frozen=True)
class ReportParams:
    start: date  # first day, inclusive
    end: date  # day after the last, exclusive
    currency: str  # ISO 4217, validated by the caller (core.money.validate_currency)
    grain: Grain = "month"
    # Optional narrowing every report may honour or ignore (documented per report).
    organization_id: int | None = None
    group_by: str | None = None  # e.g. "product_group", "product", "customer", "country"
    limit: int | None = None  # top-N lists (top customers)


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: ColumnKind = "money"


SeriesKind = Literal["bar", "line"]


@dataclass(frozen=True)
class Series:
    label: str
    values: list[Decimal]  # one per chart label; Decimal("0") where there is nothing
    # How this series is drawn when it differs from the chart's kind: a line over bars
    # (e.g. closing MRR over its movements). None: the chart's kind. A line series in a
    # stacked chart is not stacked with the bars: it shows its own values.
    kind: SeriesKind | None = None


@dataclass(frozen=True)
class Chart:
    kind: ChartKind
    labels: list[str]  # x axis: periods ("2026-11" or "2026-11-03") or categories
    series: list[Series]
    unit: str = ""  # the currency code, or "GPU-hours", "days", …


@dataclass
class Report:
    name: str
    title: str
    params: ReportParams
    columns: list[Column]
    rows: list[dict[str, Any]]
    chart: Chart | None = None
    totals: dict[str, Any] | None = None  # a totals row keyed like rows (only summable columns)
    notes: list[str] = field(default_factory=list)  # what a reader must know (e.g. "promotional credit is not cash")


@dataclass(frozen=True)
class ReportSpec:
    name: str  # URL slug: revenue, credit-held, recurring, receivables, collections, usage
    title: str
    description: str
    compute: Callable[[ReportParams], Report]
    grains: tuple[Grain, ...] = ("month", "day")
    group_by: tuple[str, ...] = ()  # the group_by values it accepts (first = default)
    # `benchmark reports`' baseline: the same figures by bare SQL over the same tables
    # (no ORM, no Python per row), run in the same benchmark for the ratio.
    baseline: Callable[[ReportParams], object] | None = None


def periods(params: ReportParams) -> list[date]:
    """The first day of every period in [start, end) at the params' grain, in order."""
    out: list[date] = []
    if params.grain == "day":
        d = params.start
        while d < params.end:
            out.append(d)
            d = date.fromordinal(d.toordinal() + 1)
        return out
    d = params.start.replace(day=1)
    while d < params.end:
        out.append(d)
        d = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return out


def period_label(d: date, grain: Grain) -> str:
    return d.strftime("%Y-%m") if grain == "month" else d.isoformat()
