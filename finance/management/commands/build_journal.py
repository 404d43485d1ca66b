from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from finance.chart import JournalError
from finance.journal import built_until, journal_build


class Command(BaseCommand):
    help = ("Build the journal for every day after the last built one, up to --date (default: the last "
            "settled day). Idempotent: a built day is never built again.")

    def add_arguments(self, parser):
        parser.add_argument("--date", type=date.fromisoformat, help="Build up to and including this day (YYYY-MM-DD).")

    def handle(self, *args, date=None, **options):
        try:
            days = journal_build(until=date)
        except JournalError as exc:
            raise CommandError(str(exc)) from exc
        last = built_until()
        self.stdout.write(f"journal built days={len(days)} until={last:%Y-%m-%d}" if last
                          else "journal built days=0 (nothing has moved money yet)")
