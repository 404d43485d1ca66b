from celery import shared_task

from core.api.idempotency import purge_expired


@shared_task(name="core.purge_idempotency_records")
def purge_idempotency_records_task() -> int:
    return purge_expired()
