"""Celery task: the history export to Gnocchi, every five minutes (beat)."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from gnocchi_export import services


@shared_task(name="gnocchi_export.export", soft_time_limit=240, time_limit=300)
def export_task() -> dict:
    """Safe to run twice or late: it starts from the watermark, and a batch sent again
    writes the same values at the same timestamps."""
    return asdict(services.export_pending(max_batches=20))
