"""Lints every metric of core/metrics.py as promtool would, and the docs that name them:
the `cloudbill_` prefix, `_total` on counters and only there, base units, no organisation
ids as labels, every metric in the docstring table and docs/core.md, and the alert rules
and dashboard using only metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from prometheus_client.metrics import MetricWrapperBase

from core import metrics

NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# Units promtool wants spelled in base units (seconds, bytes), and ids that would give
# every organisation, customer or resource a series of its own.
NON_BASE_UNIT = re.compile(r"_(milliseconds|ms|minutes|hours|days|kilobytes|megabytes|cents)(_total)?$")
FORBIDDEN_LABELS = {"organization", "organisation", "organization_id", "org", "org_id", "customer", "customer_id",
                    "resource", "resource_id", "user", "user_id", "invoice_id", "payment_id", "id", "event_id"}
ROOT = Path(settings.BASE_DIR)


def exported() -> list[tuple[str, str, tuple[str, ...]]]:
    """(name as exported, type, label names) of every metric core/metrics.py defines."""
    out = []
    for m in metrics.EVENT_METRICS:
        kind = m._type
        name = m._name + ("_total" if kind == "counter" else "")
        out.append((name, kind, tuple(m._labelnames)))
    out += [(s.name, "gauge", s.labels) for s in metrics.STATE_METRICS]
    return out


def lint(name: str, kind: str, labels: tuple[str, ...]) -> list[str]:
    problems = []
    if not NAME.match(name):
        problems.append(f"{name}: not a valid metric name")
    if not name.startswith(metrics.PREFIX):
        problems.append(f"{name}: no {metrics.PREFIX} prefix")
    if kind == "counter" and not name.endswith("_total"):
        problems.append(f"{name}: a counter's name ends in _total")
    if kind != "counter" and "_total" in name:
        problems.append(f"{name}: _total is for counters only ({kind})")
    if NON_BASE_UNIT.search(name):
        problems.append(f"{name}: use base units (seconds, bytes, the currency's major unit)")
    if kind == "histogram" and not name.endswith("_seconds"):
        problems.append(f"{name}: a histogram here measures a duration: name it _seconds")
    for label in labels:
        if label in FORBIDDEN_LABELS or label.endswith("_id"):
            problems.append(f"{name}: label {label!r} gives each object its own series")
        if label.startswith("__") or not NAME.match(label):
            problems.append(f"{name}: label {label!r} is not a valid label name")
    return problems


def test_every_metric_passes_the_naming_rules():
    found = exported()
    assert len(found) == len({n for n, _, _ in found}), "a metric is defined twice"
    problems = [p for metric in found for p in lint(*metric)]
    assert problems == []


@pytest.mark.parametrize("metric, problem", [
    (("cloudbill_ledger_postings", "counter", ()), "a counter's name ends in _total"),
    (("ledger_postings_total", "counter", ()), "no cloudbill_ prefix"),
    (("cloudbill_open_total", "gauge", ()), "_total is for counters only"),
    (("cloudbill_lag_minutes", "gauge", ()), "use base units"),
    (("cloudbill_calls_total", "counter", ("organization_id",)), "gives each object its own series"),
    (("cloudbill_calls_total", "counter", ("org",)), "gives each object its own series"),
    (("cloudbill_call_latency", "histogram", ()), "name it _seconds"),
])
def test_the_lint_finds_what_it_looks_for(metric, problem):
    assert any(problem in p for p in lint(*metric)), lint(*metric)


def test_every_event_metric_is_in_the_module_docstring_table_and_docs():
    doc = metrics.__doc__ or ""
    core_md = (ROOT / "docs" / "core.md").read_text()
    missing = [n for n, _, _ in exported() if f"`{n}`" not in doc or f"`{n}`" not in core_md]
    assert missing == []


def test_every_metric_object_of_the_module_is_listed_in_event_metrics():
    objects = [v for v in vars(metrics).values() if isinstance(v, MetricWrapperBase)]
    assert set(map(id, objects)) == set(map(id, metrics.EVENT_METRICS))


def _series_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads (identifiers starting with the prefix,
    a histogram's _bucket/_count/_sum mapped back to it)."""
    names = set(re.findall(r"\b(cloudbill_[a-z0-9_]+)", expression))
    return {re.sub(r"_(bucket|count|sum)$", "", n) if n.endswith(("_bucket", "_count", "_sum"))
            and re.sub(r"_(bucket|count|sum)$", "", n) in {m for m, k, _ in exported() if k == "histogram"} else n
            for n in names}


def test_the_alert_rules_parse_and_use_only_metrics_that_exist():
    rules = yaml.safe_load((ROOT / "docs" / "prometheus" / "alerts.yml").read_text())
    known = {n for n, _, _ in exported()}
    alerts = [r for group in rules["groups"] for r in group["rules"]]
    assert {a["alert"] for a in alerts} >= {"CloudbillMeteringLagging", "CloudbillWebhooksFailing",
                                            "CloudbillTopUpsStuck"}
    for alert in alerts:
        assert set(alert) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, alert["alert"]
        assert alert["labels"]["severity"] in {"page", "ticket"}
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]
        used = _series_names(alert["expr"])
        assert used, f"{alert['alert']} reads no cloudbill metric"
        assert used <= known, f"{alert['alert']} reads unknown metrics {used - known}"


def test_the_grafana_dashboard_uses_only_metrics_that_exist_and_shows_every_one():
    dashboard = json.loads((ROOT / "docs" / "grafana" / "cloudbill.json").read_text())
    known = {n for n, _, _ in exported()}
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = set().union(*(_series_names(e) for e in exprs))
    assert used <= known, f"unknown metrics: {used - known}"
    assert known - used == set(), "metrics the dashboard does not show"
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
