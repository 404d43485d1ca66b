from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from payments.reconcile import reconcile


class Command(BaseCommand):
    help = "Fetch recent provider events and open payments, and repair what a missed webhook left behind."

    def add_arguments(self, parser):
        parser.add_argument("--hours", type=int, default=None, help="How far back to fetch events (default: settings).")

    def handle(self, *args, hours=None, **options):
        if hours is not None and hours <= 0:
            raise CommandError("--hours must be a positive number of hours.")
        since = timezone.now() - timedelta(hours=hours) if hours else None
        report = reconcile(since=since)
        for error in report.errors:
            self.stderr.write(error)
        self.stdout.write(report.summary())
