"""Celery tasks: thin, ids in, one service call, safe to run twice.

`usage.meter` (beat, every minute) fans out one `usage.meter_chunk` per chunk so several
workers rate chunks in parallel. A chunk task that finds its chunk locked by another
worker returns at once (SKIP LOCKED); one that is killed mid-slice loses nothing (the
slice's transaction rolls back and the message is redelivered: acks late). Time limits
are far below the broker's visibility timeout, so a message is never handed to a
second worker while the first still runs it.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from usage import event_partitions, metering, partitions, rollups

METER_SOFT_LIMIT = 240  # seconds: 24 one-hour slices of a chunk fit easily
METER_HARD_LIMIT = 300


@shared_task(name="usage.meter", soft_time_limit=60, time_limit=90)
def meter_task() -> int:
    metering.ensure_chunks()
    until = metering.until_minute()
    for chunk in range(metering.chunk_count()):
        meter_chunk_task.delay(chunk, until)
    return until


@shared_task(name="usage.meter_chunk", soft_time_limit=METER_SOFT_LIMIT, time_limit=METER_HARD_LIMIT)
def meter_chunk_task(chunk: int, until: int) -> int:
    slices = metering.meter_chunk(chunk=chunk, until=until, max_slices=settings.USAGE_METERING_MAX_SLICES_PER_TASK,
                                  stagger=True)
    return sum(s.rows for s in slices)


@shared_task(name="usage.rollup", soft_time_limit=240, time_limit=300)
def rollup_task() -> int:
    return rollups.rollup_pending(batches=50)


@shared_task(name="usage.retention", soft_time_limit=1200, time_limit=1500)
def retention_task() -> dict:
    created = partitions.ensure_partitions() + event_partitions.ensure_event_partitions()
    return {"created": len(created), **partitions.drop_expired(), **event_partitions.drop_expired_events()}
