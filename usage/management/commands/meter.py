from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from usage import metering, rollups
from usage.models import from_minute, to_minute


class Command(BaseCommand):
    help = ("Run one metering pass over every chunk up to --until (default: now minus the grace), "
            "catching up every missed minute in one-hour slices, then roll the runs up.")

    def add_arguments(self, parser):
        parser.add_argument("--until", help="ISO 8601 time with a zone, e.g. 2026-03-10T14:00:00Z.")

    def handle(self, *args, until=None, **options):
        when = None
        if until:
            try:
                when = datetime.fromisoformat(until)
            except ValueError:
                raise CommandError(f"--until {until!r} is not an ISO 8601 time (e.g. 2026-03-10T14:00:00Z).")
            if when.tzinfo is None:
                raise CommandError("--until needs a time zone (e.g. 2026-03-10T14:00:00Z).")
            if to_minute(when) > metering.until_minute(timezone.now()):
                raise CommandError("--until is later than now minus the metering grace: those minutes may still change.")
        result = metering.meter_pass(until=when)
        rolled = rollups.rollup_pending()
        self.stdout.write(
            f"metered to {from_minute(result.until_minute):%Y-%m-%d %H:%M} UTC: "
            f"{len(result.slices)} slices, {result.rows} rows ({result.corrections} for corrections), "
            f"{rolled} runs rolled up"
            + (f"; chunks {result.skipped_chunks} busy in another pass" if result.skipped_chunks else "")
        )
