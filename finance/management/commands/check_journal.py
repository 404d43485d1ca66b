from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from finance.verify import journal_check


class Command(BaseCommand):
    help = ("Prove the built journal: every day balances to zero per currency and agrees, cent for cent, with "
            "the credit ledger, the invoices, the credit notes and the payments. Exits non-zero naming each "
            "day and difference.")

    def handle(self, *args, **options):
        report = journal_check()
        for problem in report.problems:
            self.stderr.write(problem)
        if report.problems:
            raise CommandError(f"journal disagrees: {len(report.problems)} problem(s) over {report.days} day(s)")
        self.stdout.write(f"journal agrees days={report.days} entries={report.entries}")
