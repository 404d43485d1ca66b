from collections.abc import Sequence
from typing import TypedDict

from celery import shared_task

from core.api.idempotency import purge_expired


class RetryPolicy(TypedDict):
    """`shared_task(**policy)` options for tasks that retry transient errors with backoff."""

    autoretry_for: Sequence[type[BaseException]]
    retry_backoff: bool | int
    retry_backoff_max: int
    max_retries: int


@shared_task(name="core.purge_idempotency_records", soft_time_limit=600, time_limit=900)
def purge_idempotency_records_task() -> int:
    """Beat, hourly: delete the idempotency records past their lifetime, in bounded
    batches (`core.api.idempotency.purge_expired`). Safe to run twice."""
    return purge_expired()


@shared_task(name="core.outbox_relay", soft_time_limit=50, time_limit=60)
def outbox_relay_task() -> int:
    """Beat, every 30 s: send the outbox messages a broker outage left behind (core.outbox)."""
    from core.outbox import relay

    return relay()
