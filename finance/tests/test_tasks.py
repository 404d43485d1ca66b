"""The daily task builds what the command builds, and running it twice builds nothing twice."""

from __future__ import annotations

from finance.models import JournalDay, JournalEntry
from finance.tasks import finance_build_journal_task
from finance.tests.world import NOW


def test_the_daily_task_builds_every_settled_day_once(world, time_machine):
    time_machine.move_to(NOW, tick=False)
    assert finance_build_journal_task() == 31
    entries = JournalEntry.objects.count()
    assert finance_build_journal_task() == 0
    assert JournalEntry.objects.count() == entries == 13
    assert JournalDay.objects.order_by("-date").first().date.isoformat() == "2026-12-02"
