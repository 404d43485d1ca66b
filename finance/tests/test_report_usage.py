"""Usage trends (finance/reports/usage.py) against figures computed by hand from a small
fixture of daily rollups (`rollups`, finance/tests/usage_world.py): two organisations in
USD, an 8-GPU flavour and a CPU flavour, one organisation in EUR (never in a USD report),
rows on both sides of the range."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from finance.reports.base import ReportError, ReportParams
from finance.reports.registry import reports


def _usage(**kw):
    return reports()["usage"].compute(ReportParams(currency="USD", **kw))


def test_usage_is_registered_with_its_groupings():
    spec = reports()["usage"]
    assert spec.title == "Usage trends"
    assert spec.group_by == ("product", "customer")
    assert spec.grains == ("day", "month")


def test_per_product_per_day(rollups):
    report = _usage(start=date(2026, 11, 3), end=date(2026, 11, 5), grain="day")
    assert report.rows == [
        # 90 + 30 + 60 minutes = 3 h; running (90 + 60) × 8 GPUs = 1200 min = 20 GPU-h;
        # 12.345 + 0.105 + 8.235 = 20.685, rounded once half-up (not to even): 20.69.
        {"period": date(2026, 11, 3), "product": "gpu-h100-8x", "product_name": "H100 × 8",
         "hours": D("3.0000"), "gpu_hours": D("20.0000"), "amount": D("20.69")},
        # 20 + 40 minutes = 1 h; 0.333333333333 + 0.666666666667 = 1.
        {"period": date(2026, 11, 4), "product": "cpu-4", "product_name": "CPU 4",
         "hours": D("1.0000"), "gpu_hours": D("0.0000"), "amount": D("1.00")},
    ]
    assert report.totals == {"hours": D("4.0000"), "gpu_hours": D("20.0000"), "amount": D("21.69")}
    assert report.chart is not None
    assert report.chart.unit == "GPU-hours"
    assert report.chart.labels == ["2026-11-03", "2026-11-04"]
    assert [(s.label, s.values) for s in report.chart.series] == [("H100 × 8", [D("20.0000"), D("0")])]
    assert [c.key for c in report.columns] == ["period", "product", "product_name", "hours", "gpu_hours", "amount"]


def test_per_product_per_month_keeps_the_range_half_open(rollups):
    report = _usage(start=date(2026, 11, 1), end=date(2026, 12, 1), grain="month")
    cpu, gpu = report.rows  # in catalogue order (group, position, code)
    # 180 + 60 minutes = 4 h; (150 + 60) × 8 = 1680 min = 28 GPU-h; 20.685 + 5 = 25.685 → 25.69.
    # Neither 31 October, nor 1 December, nor the EUR row.
    assert (gpu["period"], gpu["hours"], gpu["gpu_hours"], gpu["amount"]) == (
        date(2026, 11, 1), D("4.0000"), D("28.0000"), D("25.69"))
    assert (cpu["product"], cpu["hours"], cpu["amount"]) == ("cpu-4", D("1.0000"), D("1.00"))
    assert report.chart.labels == ["2026-11"]


def test_top_customers_by_spend(rollups):
    report = _usage(start=date(2026, 11, 1), end=date(2026, 12, 1), group_by="customer")
    # Acme: 12.345 + 0.105 + 0.666666666667 + 5 = 18.116666666667 → 18.12; 220 min = 3.6667 h;
    #       (90 + 60) × 8 = 1200 min = 20 GPU-h.
    # Globex: 8.235 + 0.333333333333 = 8.568333333333 → 8.57; 80 min = 1.3333 h; 60 × 8 = 8 GPU-h.
    assert report.rows == [
        {"rank": 1, "customer": "Acme", "organization_id": rollups["one"].pk,
         "hours": D("3.6667"), "gpu_hours": D("20.0000"), "amount": D("18.12")},
        {"rank": 2, "customer": "Globex", "organization_id": rollups["two"].pk,
         "hours": D("1.3333"), "gpu_hours": D("8.0000"), "amount": D("8.57")},
    ]
    assert report.chart.kind == "bar"
    assert report.chart.labels == ["Acme", "Globex"]
    assert report.chart.series[0].values == [D("18.12"), D("8.57")]
    assert report.chart.unit == "USD"


def test_the_limit_cuts_the_list_and_the_note_gives_everyones_total(rollups):
    report = _usage(start=date(2026, 11, 1), end=date(2026, 12, 1), group_by="customer", limit=1)
    assert [r["customer"] for r in report.rows] == ["Acme"]
    # 18.116666666667 + 8.568333333333 = 26.685, rounded once: 26.69.
    assert "The 1 largest of 2 customers with usage in USD; all of them together: $26.69." in report.notes[0]
    assert report.totals == {"hours": D("3.6667"), "gpu_hours": D("20.0000"), "amount": D("18.12")}


def test_one_organisation_only(rollups):
    report = _usage(start=date(2026, 11, 1), end=date(2026, 12, 1), organization_id=rollups["two"].pk)
    assert [(r["product"], r["amount"]) for r in report.rows] == [("cpu-4", D("0.33")), ("gpu-h100-8x", D("8.24"))]


def test_another_currency_is_its_own_report(rollups):
    report = reports()["usage"].compute(ReportParams(start=date(2026, 11, 1), end=date(2026, 12, 1), currency="EUR"))
    assert [(r["hours"], r["gpu_hours"], r["amount"]) for r in report.rows] == [(D("10.0000"), D("80.0000"),
                                                                                D("99.00"))]


def test_no_usage_is_an_empty_table_and_chart(db):
    report = _usage(start=date(2026, 11, 1), end=date(2026, 11, 3), grain="day")
    assert report.rows == []
    assert report.chart.labels == ["2026-11-01", "2026-11-02"]
    assert report.chart.series == []
    assert report.totals == {"hours": D("0"), "gpu_hours": D("0"), "amount": D("0")}


@pytest.mark.parametrize("kw, message", [
    ({"group_by": "country"}, "group by product or customer"),
    ({"group_by": "customer", "limit": 0}, "from 1 to 1000"),
])
def test_parameters_it_cannot_answer_are_a_report_error(db, kw, message):
    with pytest.raises(ReportError, match=message):
        _usage(start=date(2026, 11, 1), end=date(2026, 12, 1), **kw)


def test_the_baseline_reads_the_same_sums(rollups):
    spec = reports()["usage"]
    params = ReportParams(start=date(2026, 11, 3), end=date(2026, 11, 5), currency="USD", grain="day")
    rows = spec.baseline(params)
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [
        (date(2026, 11, 3), 180, 1200, D("20.685000000000")), (date(2026, 11, 4), 60, 0, D("1.000000000000"))]
