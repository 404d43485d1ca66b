from __future__ import annotations

import logging

from celery import shared_task

from finance.journal import journal_build

logger = logging.getLogger(__name__)


@shared_task(name="finance.build_journal", soft_time_limit=1800, time_limit=1900)
def finance_build_journal_task() -> int:
    """Every day since the last built one, up to the last settled day. Safe to run twice:
    a built day is never built again, and each day commits on its own."""
    days = journal_build()
    logger.info("journal: built %d day(s)", len(days))
    return len(days)
