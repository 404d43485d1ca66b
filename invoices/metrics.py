"""invoices' state for /metrics (core.metrics, METRICS_STATE_SOURCES): the latest run's progress."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count

from core.metrics import Sample
from invoices.models import InvoiceRun, InvoiceRunItem, RunItemStatus, RunStatus


def state() -> Iterator[Sample]:
    run = InvoiceRun.objects.order_by("-period_start").only("id", "period_start", "status").first()
    if run is None:
        yield Sample("cloudbill_invoice_run_running", 0)
        return
    counts = dict(InvoiceRunItem.objects.filter(run=run).values("status").annotate(n=Count("id"))
                  .order_by().values_list("status", "n"))
    for status in RunItemStatus.values:
        yield Sample("cloudbill_invoice_run_organizations", counts.get(status, 0), {"status": status})
    yield Sample("cloudbill_invoice_run_period_start_timestamp_seconds", int(run.period_start.timestamp()))
    yield Sample("cloudbill_invoice_run_running", 1 if run.status == RunStatus.RUNNING else 0)
