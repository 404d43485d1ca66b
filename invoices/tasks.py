"""Thin tasks: ids in, one service call, bounded retries, safe to run twice."""

from __future__ import annotations

from celery import Task, shared_task
from django.db import OperationalError
from django.utils import timezone

from invoices import engine, rendering
from invoices.models import RunItemStatus

RETRY_AFTER = 60  # seconds before a failed organisation of a chunk is tried again alone
RETRY_BACKOFF_MAX = 3600


def backoff(retries: int, first: int = RETRY_AFTER) -> int:
    """Seconds before retry number `retries` + 1: 60, 120, 240, … capped at an hour.
    (Celery's retry_backoff only applies to autoretry_for; these tasks retry by hand.)"""
    return min(RETRY_BACKOFF_MAX, first * 2 ** retries)


@shared_task(name="invoices.monthly_run")
def invoice_monthly_run_task() -> int:
    """Beat, shortly after each calendar month closes (UTC): bill the month that closed."""
    _run, todo = engine.invoice_run_start(now=timezone.now())
    return len(todo)


@shared_task(name="invoices.invoice_chunk", bind=True, max_retries=5, default_retry_delay=60)
def invoice_chunk_task(self: Task, run_id: int, organization_ids: list[int]) -> dict[str, int]:
    """Bill a chunk of organisations. Those that failed are recorded on their run items
    and retried one by one, with backoff, by `invoice_organization_task`."""
    try:
        statuses = engine.invoice_organizations(run_id=run_id, organization_ids=organization_ids, render_pdf=True,
                                                send_email=True)
    except Exception as exc:  # the database went away before anything was recorded
        raise self.retry(exc=exc) from exc
    failed = [org_id for org_id, status in statuses.items() if status == RunItemStatus.FAILED]
    for org_id in failed:
        invoice_organization_task.apply_async((run_id, org_id), countdown=RETRY_AFTER)
    return {status: list(statuses.values()).count(status) for status in set(statuses.values())}


@shared_task(name="invoices.invoice_organization", bind=True, max_retries=5)
def invoice_organization_task(self: Task, run_id: int, organization_id: int) -> str:
    try:
        return engine.invoice_organization(run_id=run_id, organization_id=organization_id, render_pdf=True,
                                           send_email=True)
    except Exception as exc:
        # The failure is on the run item already; try again later, the others go on.
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc


@shared_task(name="invoices.render_pdf", bind=True, max_retries=5, soft_time_limit=120, time_limit=180)
def invoice_render_pdf_task(self: Task, invoice_id: int) -> None:
    """Render once and store (idempotent: an invoice with a PDF is left alone). Storage
    and database hiccups are retried with backoff; the email task also renders a
    missing PDF, so a PDF that never rendered still reaches the customer."""
    try:
        rendering.invoice_ensure_pdf(invoice_id=invoice_id)
    except (OSError, OperationalError) as exc:
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc


@shared_task(name="invoices.email", bind=True, max_retries=5, default_retry_delay=120)
def invoice_email_task(self: Task, invoice_id: int, force: bool = False) -> None:
    try:
        rendering.invoice_send_email(invoice_id=invoice_id, force=force)
    except OSError as exc:  # SMTP and network trouble are transient
        raise self.retry(exc=exc) from exc


@shared_task(name="invoices.credit_note_email", bind=True, max_retries=5, default_retry_delay=120,
             soft_time_limit=120, time_limit=180)
def credit_note_email_task(self: Task, credit_note_id: int, force: bool = False) -> None:
    """Render a credit note's PDF once and email it (both idempotent)."""
    from invoices import credit_note_documents

    try:
        credit_note_documents.credit_note_send_email(credit_note_id=credit_note_id, force=force)
    except (OSError, OperationalError) as exc:
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc


@shared_task(name="invoices.overdue_webhooks", soft_time_limit=300, time_limit=360)
def invoice_overdue_webhooks_task() -> int:
    """Hourly: invoice.overdue for invoices that passed their due date (once each)."""
    from invoices.webhook_events import emit_overdue

    return emit_overdue()
