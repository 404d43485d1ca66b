"""Every report, by its URL slug. A report module calls `register(ReportSpec(...))` at
import and is named in REPORT_MODULES (one line each); `reports()` imports them all."""

from __future__ import annotations

import importlib

from finance.reports.base import ReportSpec

# Each report's module under finance/reports/. Order = the console's menu order.
REPORT_MODULES: tuple[str, ...] = (
    "revenue",
    "credit_held",
    "recurring",
    "receivables",
    "collections",
    "usage",
)

REPORTS: dict[str, ReportSpec] = {}


def register(spec: ReportSpec) -> ReportSpec:
    if spec.name in REPORTS and REPORTS[spec.name] is not spec:
        raise ValueError(f"report {spec.name!r} registered twice")
    REPORTS[spec.name] = spec
    return spec


def reports() -> dict[str, ReportSpec]:
    """Every registered report in menu order."""
    for module in REPORT_MODULES:
        importlib.import_module(f"finance.reports.{module}")
    order = {m.replace("_", "-"): i for i, m in enumerate(REPORT_MODULES)}
    return dict(sorted(REPORTS.items(), key=lambda kv: order.get(kv[0], len(order))))
