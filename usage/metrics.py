"""usage's state for /metrics (core.metrics, METRICS_STATE_SOURCES): the metering lag."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Min
from django.utils import timezone

from core.metrics import Sample
from usage.metering import chunk_count
from usage.models import MeteringChunk


def state() -> Iterator[Sample]:
    """Seconds from the watermark of the chunk furthest behind to now: every minute below a
    watermark is metered. Usually the grace (USAGE_METERING_GRACE) plus under a minute;
    absent until some chunk has been metered."""
    lowest = (MeteringChunk.objects.filter(number__lt=chunk_count(), watermark_minute__isnull=False)
              .aggregate(m=Min("watermark_minute"))["m"])
    if lowest is not None:
        yield Sample("cloudbill_metering_lag_seconds", int(timezone.now().timestamp()) - lowest * 60)
