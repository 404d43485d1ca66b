"""Thin tasks: ids in, one service call, safe to run twice (acks_late is global)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.utils.module_loading import import_string

from core.errors import Conflict
from core.tasks import RetryPolicy
from credits import hibernation, notify, runway, services

logger = logging.getLogger(__name__)
RETRY: RetryPolicy = {"autoretry_for": (OSError,), "retry_backoff": True, "retry_backoff_max": 600, "max_retries": 8}


@shared_task(name="credits.sync_pending", soft_time_limit=300, time_limit=360)
def credits_sync_pending_task() -> int:
    from credits.sync import sync_pending

    return sync_pending()


@shared_task(name="credits.runway", soft_time_limit=300, time_limit=360)
def credits_runway_task() -> int:
    runway.compute_burn_rates()
    return runway.send_warnings()


@shared_task(name="credits.promo_expiry", soft_time_limit=300, time_limit=360)
def credits_promo_expiry_task() -> int:
    return services.promo_expire_due()


@shared_task(name="credits.topup_dispatch", soft_time_limit=120, time_limit=180)
def credits_topup_dispatch_task(topup_id: int) -> None:
    topup = services.topup_begin_attempt(topup_id=topup_id)
    if topup is None:
        return
    path = settings.CREDITS_AUTO_TOPUP_HANDLER if topup.source == "auto" else settings.CREDITS_TOPUP_HANDLER
    try:
        import_string(path)(topup.pk)
    except Conflict:
        raise
    except Exception as exc:  # the handler's failure is the top-up's failure: recorded, retried
        logger.exception("top-up handler failed for top-up %s", topup_id)
        services.auto_topup_failed(topup_id=topup.pk, error=f"{type(exc).__name__}: {exc}", retryable=True)


@shared_task(name="credits.topup_retry", soft_time_limit=120, time_limit=180)
def credits_topup_retry_task() -> int:
    from credits.services.topups import topups_stranded_sweep

    topups_stranded_sweep()
    due = services.topups_due_for_retry()
    for topup_id in due:
        credits_topup_dispatch_task.delay(topup_id)
    return len(due)


@shared_task(name="credits.auto_topup_check", soft_time_limit=60, time_limit=90)
def credits_auto_topup_check_task(organization_id: int, currency: str) -> None:
    services.auto_topup_check(organization_id=organization_id, currency=currency)


@shared_task(name="credits.hibernate_due", soft_time_limit=300, time_limit=360)
def credits_hibernate_task() -> int:
    return hibernation.hibernate_due()


@shared_task(name="credits.ladder_due", soft_time_limit=300, time_limit=360)
def credits_ladder_task() -> int:
    from credits import ladder

    return ladder.advance_due()


@shared_task(name="credits.resume", soft_time_limit=120, time_limit=180)
def credits_resume_task(organization_id: int) -> None:
    try:
        hibernation.resume(organization_id=organization_id)
    except Conflict:
        pass  # spent again before the task ran: stays hibernated


@shared_task(name="credits.provisioning_deliver", soft_time_limit=60, time_limit=90)
def credits_provisioning_deliver_task(request_id: int) -> bool:
    return hibernation.deliver(request_id=request_id)


@shared_task(name="credits.provisioning_retry", soft_time_limit=300, time_limit=360)
def credits_provisioning_retry_task() -> int:
    return hibernation.deliver_due()


@shared_task(name="credits.email_event", **RETRY)
def credits_email_event_task(event_id: int) -> int:
    return notify.email_event(event_id)
