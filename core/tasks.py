from celery import shared_task

from core.api.idempotency import purge_expired


@shared_task(name="core.purge_idempotency_records", soft_time_limit=600, time_limit=900)
def purge_idempotency_records_task() -> int:
    """Beat, hourly: delete the idempotency records past their lifetime, in bounded
    batches (`core.api.idempotency.purge_expired`). Safe to run twice."""
    return purge_expired()
