"""A report registered by the tests only, so the console, CSV and API are shown to serve
any ReportSpec the registry holds, not just the reports written so far."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from finance.reports.base import (
    Chart,
    Column,
    Report,
    ReportError,
    ReportParams,
    ReportSpec,
    Series,
    period_label,
    periods,
)
from finance.reports.registry import REPORTS, register

NAME = "dummy-test"
CALLS: list[ReportParams] = []


def compute(params: ReportParams) -> Report:
    CALLS.append(params)
    if params.group_by == "broken":
        raise ReportError("This grouping cannot be answered for the range.")
    starts = periods(params)
    rows = [{"period": d, "label": "=cmd|' /C calc'!A0" if i == 0 else f"row {i}", "amount": D("1234.5") * (i + 1),
             "rate": D("0.034333333333"), "count": 1000 + i, "share": D("12.5"), "days": 31}
            for i, d in enumerate(starts)]
    kind = "month" if params.grain == "month" else "date"
    columns = [Column("period", "Period", kind), Column("label", "Label", "text"), Column("amount", "Amount"),
               Column("rate", "Rate", "rate"), Column("count", "Count", "count"),
               Column("share", "Share", "percent"), Column("days", "Days", "days")]
    chart = Chart("line", [period_label(d, params.grain) for d in starts],
                  [Series("Amount", [r["amount"] for r in rows])], unit=params.currency)
    return Report(NAME, "Dummy report", params, columns, rows, chart,
                  totals={"amount": sum((r["amount"] for r in rows), D(0)), "count": sum(r["count"] for r in rows)},
                  notes=["A note the reader must know."])


SPEC = ReportSpec(name=NAME, title="Dummy report", description="Registered by the tests.", compute=compute,
                  grains=("month", "day"), group_by=("product", "customer", "broken"))


@pytest.fixture
def dummy_report():
    # The site's URL conf makes its API routes from the registry when it is imported:
    # import it first, so the dummy never becomes a route of the real one (the API tests
    # mount the dummy's route in a URL conf of their own).
    import billing_site.urls  # noqa: F401

    register(SPEC)
    CALLS.clear()
    yield SPEC
    REPORTS.pop(NAME, None)


FIRST = date(2026, 11, 1)
