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


@shared_task(name="core.purge_idempotency_records")
def purge_idempotency_records_task() -> int:
    return purge_expired()
