"""Celery beat runs what settings schedule: every entry names a task a worker knows."""

from __future__ import annotations

from celery.schedules import crontab

from billing_site.celery import app


def registered_tasks() -> set[str]:
    app.loader.import_default_modules()  # every installed app's tasks module, as a worker loads them
    return set(app.tasks)


def test_every_beat_entry_names_a_registered_task(settings):
    tasks = registered_tasks()
    unknown = {entry: spec["task"] for entry, spec in settings.CELERY_BEAT_SCHEDULE.items() if spec["task"] not in tasks}
    assert unknown == {}


def test_expired_idempotency_records_are_purged_every_hour(settings):
    [schedule] = [spec["schedule"] for spec in settings.CELERY_BEAT_SCHEDULE.values()
                  if spec["task"] == "core.purge_idempotency_records"]
    assert isinstance(schedule, crontab)
    assert schedule.hour == set(range(24)) and len(schedule.minute) == 1


def test_the_journal_is_built_once_a_day_after_the_day_has_settled(settings):
    from finance.journal import SETTLE_AFTER

    [schedule] = [spec["schedule"] for spec in settings.CELERY_BEAT_SCHEDULE.values()
                  if spec["task"] == "finance.build_journal"]
    assert isinstance(schedule, crontab)
    assert len(schedule.hour) == 1 and len(schedule.minute) == 1 and len(schedule.day_of_month) == 31
    # After the day's settling time, and after the 02:00 monthly invoice run.
    [hour], [minute] = schedule.hour, schedule.minute
    assert hour * 60 + minute > max(SETTLE_AFTER.total_seconds() // 60, 2 * 60)
