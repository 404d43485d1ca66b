"""The two engines over one pipeline.

- Scheduled: after a calendar month closes, `invoice_run_start` records an `InvoiceRun`
  for it, pre-filters (set-based) the organisations with anything to bill, and fans out
  one `invoice_chunk_task` per chunk of organisations (`INVOICE_RUN_CHUNK_SIZE`). The
  pipeline reads the whole chunk's inputs in a few set-based queries; each organisation
  is then stored in its own transaction and numbered in a short second one. A failure is
  recorded on its `InvoiceRunItem` and retried on its own, and never stops the others.
- On demand: `interim_bill` runs the same handlers over [month start, until) without
  those with side effects (finalize, notify; see `pipeline.pipeline_paths`): nothing is
  stored, numbered or sent.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Exists, F, OuterRef, Subquery, Value, When
from django.utils import timezone

from accounts.models import Organization
from core.errors import DomainError
from invoices import selectors, sources
from invoices.models import Invoice, InvoiceRun, InvoiceRunItem, InvoiceStatus, RunItemStatus, RunStatus
from invoices.pipeline import (
    ON_DEMAND,
    SCHEDULED,
    Bill,
    BillingContext,
    month_containing,
    previous_month,
    run_pipeline,
)

log = logging.getLogger(__name__)
ONE_MICROSECOND = timedelta(microseconds=1)


def period_for(label: str) -> tuple[datetime, datetime]:
    """'2026-10' → the month [2026-10-01, 2026-11-01) UTC."""
    try:
        year, month = (int(x) for x in label.split("-"))
        from invoices.pipeline import month_bounds

        return month_bounds(year, month)
    except (ValueError, TypeError):
        raise DomainError(f"{label!r} is not a month such as 2026-10.", field="period") from None


def candidates(org_ids: list[int] | None, start: datetime, end: datetime) -> set[int]:
    """Organisations with anything to bill for the month, found set-based: usage,
    subscriptions, metered quantities or a contract minimum, or an unpaid invoice."""
    found = sources.organizations_with_charges(org_ids, start, end)
    unpaid = Invoice.objects.filter(
        status__in=(InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE), carried_to__isnull=True, period_start__lt=start
    )
    if org_ids is not None:
        unpaid = unpaid.filter(organization_id__in=org_ids)
    found |= set(unpaid.values_list("organization_id", flat=True).distinct())
    return found


def invoice_run_start(
    *, period: tuple[datetime, datetime] | None = None, org_ids: list[int] | None = None,
    now: datetime | None = None, dispatch: bool = True,
) -> tuple[InvoiceRun, list[int]]:
    """Record the run of a closed month and fan out its organisations. Safe to run again
    and late: the period is the month given (default: the last closed one), and only
    organisations without an issued invoice for it are dispatched."""
    now = now or timezone.now()
    start, end = period or previous_month(now)
    if end > now:
        raise DomainError(f"{start:%Y-%m} has not closed yet; it can be billed from {end:%Y-%m-%d %H:%M} UTC.",
                          field="period")
    dispatchable = candidates(org_ids, start, end)
    done = set(
        Invoice.objects.filter(period_start=start).exclude(status=InvoiceStatus.DRAFT)
        .values_list("organization_id", flat=True)
    )
    todo = sorted(dispatchable - done)
    with transaction.atomic():
        run, _ = InvoiceRun.objects.get_or_create(
            period_start=start, defaults={"period_end": end, "started_at": now}
        )
        InvoiceRunItem.objects.bulk_create(
            [InvoiceRunItem(run=run, organization_id=i) for i in todo], ignore_conflicts=True, batch_size=2000
        )
        InvoiceRunItem.objects.filter(run=run, organization_id__in=todo).exclude(
            status=RunItemStatus.PENDING
        ).update(status=RunItemStatus.PENDING)
        InvoiceRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, finished_at=None)
        if dispatch:
            from core import outbox

            for chunk in chunks(todo):
                outbox.enqueue("invoices.invoice_chunk", run.pk, list(chunk))
    _maybe_close(run.pk)
    return run, todo


def chunks(org_ids: list[int], size: int | None = None) -> list[list[int]]:
    """The organisations of a run in chunks of `settings.INVOICE_RUN_CHUNK_SIZE`: one
    Celery task each, so the pipeline's set-based reads serve a whole chunk at once."""
    size = size or settings.INVOICE_RUN_CHUNK_SIZE
    return [org_ids[i:i + size] for i in range(0, len(org_ids), size)]


def invoice_organizations(*, run_id: int, organization_ids: list[int], render_pdf: bool, send_email: bool,
                          now: datetime | None = None) -> dict[int, str]:
    """Bill a chunk of organisations for the run's month and return each one's run-item
    status. The handlers read every input of the chunk in a few set-based queries; each
    organisation is then stored in its own transaction and numbered in a short second
    one. A failing organisation is recorded on its run item ("failed") and never affects
    the others. Idempotent: issued invoices are left alone, crash drafts are rebuilt.
    `render_pdf` and `send_email` say whether each issued invoice's PDF is rendered and
    whether it is emailed, after commit (a backfill turns both off)."""
    run = InvoiceRun.objects.get(pk=run_id)
    statuses, _failures = _bill(run, list(organization_ids), render_pdf=render_pdf, send_email=send_email,
                                now=now or timezone.now())
    _maybe_close(run.pk)
    return statuses


def invoice_organization(*, run_id: int, organization_id: int, render_pdf: bool, send_email: bool,
                         now: datetime | None = None) -> str:
    """Bill one organisation (a retry, or `invoice_run --org`); its failure is recorded
    and raised."""
    run = InvoiceRun.objects.get(pk=run_id)
    statuses, failures = _bill(run, [organization_id], render_pdf=render_pdf, send_email=send_email,
                               now=now or timezone.now())
    _maybe_close(run.pk)
    if organization_id in failures:
        raise failures[organization_id]
    return statuses[organization_id]


def _bill(run: InvoiceRun, org_ids: list[int], *, render_pdf: bool, send_email: bool,
          now: datetime) -> tuple[dict[int, str], dict[int, Exception]]:
    ctx = BillingContext(
        mode=SCHEDULED, period_start=run.period_start, period_end=run.period_end,
        span_start=run.period_start, span_end=run.period_end, organization_ids=org_ids,
        now=now, render_pdf=render_pdf, send_email=send_email, run_id=run.pk,
    )
    try:
        run_pipeline(SCHEDULED, ctx)
    except Exception as exc:
        if len(org_ids) > 1:
            # A step failed for the chunk as a whole: bill its organisations one by one,
            # so only the one at fault fails. (Issued invoices are left alone.)
            log.warning("invoice run %s: chunk of %d failed (%s); billing one by one", run.pk, len(org_ids), exc)
            statuses: dict[int, str] = {}
            failures: dict[int, Exception] = {}
            for org_id in org_ids:
                one, failed = _bill(run, [org_id], render_pdf=render_pdf, send_email=send_email, now=now)
                statuses.update(one)
                failures.update(failed)
            return statuses, failures
        ctx.failures[org_ids[0]] = exc
    failures = ctx.failures
    for org_id, error in failures.items():
        InvoiceRunItem.objects.filter(run=run, organization_id=org_id).update(
            status=RunItemStatus.FAILED, attempts=F("attempts") + 1, last_error=f"{type(error).__name__}: {error}"[:2000],
            updated_at=timezone.now(),
        )
    if failures:
        InvoiceRun.objects.filter(pk=run.pk).update(status=RunStatus.FAILED)
    done = [org_id for org_id in org_ids if org_id not in failures]
    # Issued invoices of the chunk (just now or by an earlier attempt), in one query.
    issued = dict(
        Invoice.objects.filter(organization_id__in=done, period_start=run.period_start)
        .exclude(status=InvoiceStatus.DRAFT).values_list("organization_id", "pk")
    )
    statuses = {org_id: RunItemStatus.INVOICED if org_id in issued else RunItemStatus.SKIPPED for org_id in done}
    statuses.update({org_id: RunItemStatus.FAILED for org_id in failures})
    items = InvoiceRunItem.objects.filter(run=run)
    stamp = {"attempts": F("attempts") + 1, "last_error": "", "updated_at": timezone.now()}
    if issued:
        items.filter(organization_id__in=list(issued)).update(
            status=RunItemStatus.INVOICED,
            invoice_id=Subquery(Invoice.objects.filter(organization_id=OuterRef("organization_id"),
                                                       period_start=run.period_start)
                                .exclude(status=InvoiceStatus.DRAFT).values("pk")[:1]),
            **stamp,
        )
    skipped = [org_id for org_id in done if org_id not in issued]
    if skipped:
        items.filter(organization_id__in=skipped).update(status=RunItemStatus.SKIPPED, invoice_id=None, **stamp)
    return statuses, dict(failures)


def _maybe_close(run_id: int) -> None:
    """Close the run once nothing is pending: one UPDATE, a no-op while work remains.
    A failed organisation retried alone later settles the run again (failed → done)."""
    items = InvoiceRunItem.objects.filter(run_id=run_id)
    InvoiceRun.objects.filter(pk=run_id).exclude(
        Exists(items.filter(status=RunItemStatus.PENDING))
    ).update(
        status=Case(When(Exists(items.filter(status=RunItemStatus.FAILED)), then=Value(RunStatus.FAILED)),
                    default=Value(RunStatus.DONE)),
        finished_at=timezone.now(),
    )


def interim_bill(
    *, organization: Organization, until: datetime | None = None, since: datetime | None = None,
    now: datetime | None = None,
) -> tuple[BillingContext, Bill | None]:
    """The interim invoice of the month containing `until` (default now), over
    [since or month start, until). Computed, never stored."""
    now = now or timezone.now()
    until = until or now
    start, end = month_containing(until - ONE_MICROSECOND)
    since = since or start
    if not (start <= since < until <= end):
        raise DomainError("The span must lie inside one calendar month.", field="until")
    ctx = BillingContext(
        mode=ON_DEMAND, period_start=start, period_end=end, span_start=since, span_end=until,
        organization_ids=[organization.pk], now=now, render_pdf=False, send_email=False,
    )
    run_pipeline(ON_DEMAND, ctx)
    return ctx, ctx.bills.get(organization.pk)


__all__ = ["chunks", "interim_bill", "invoice_organization", "invoice_organizations", "invoice_run_start", "period_for", "candidates", "selectors"]
