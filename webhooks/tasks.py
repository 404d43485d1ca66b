"""Webhook tasks, on their own queue (`webhooks`): they wait on customers' servers, so
a slow receiver never holds up payments or documents."""

from __future__ import annotations

from celery import shared_task

from webhooks import delivery


@shared_task(name="webhooks.dispatch", soft_time_limit=60, time_limit=90)
def dispatch_task(delivery_ids: list[int]) -> int:
    """Fan one committed batch out to one task per delivery (sent by the outbox)."""
    for pk in delivery_ids:
        deliver_task.delay(pk)
    return len(delivery_ids)


@shared_task(name="webhooks.deliver", soft_time_limit=60, time_limit=90)
def deliver_task(delivery_id: int) -> str | None:
    """No Celery retry: a failure is recorded on the delivery, whose `next_attempt_at`
    `webhooks.deliver_due` picks up."""
    return delivery.deliver(delivery_id)


@shared_task(name="webhooks.deliver_due", soft_time_limit=60, time_limit=90)
def deliver_due_task() -> int:
    ids = delivery.deliver_due()
    for pk in ids:
        deliver_task.delay(pk)
    return len(ids)


@shared_task(name="webhooks.endpoint_disabled_email", soft_time_limit=60, time_limit=90,
             autoretry_for=(OSError,), retry_backoff=True, retry_backoff_max=600, max_retries=8)
def endpoint_disabled_email_task(endpoint_id: int) -> int:
    return delivery.disabled_email(endpoint_id)
