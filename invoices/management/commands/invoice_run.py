from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from core.errors import DomainError
from invoices import engine
from invoices.models import InvoiceRunItem, RunItemStatus


class Command(BaseCommand):
    help = "Invoice every organisation for a closed month (default: the last one). Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--period", help="The month, e.g. 2026-10 (default: the last closed month).")
        parser.add_argument("--org", type=int, action="append", dest="orgs", help="Only this organisation id (repeatable).")
        parser.add_argument("--no-pdf", action="store_true", help="Do not render the invoices' PDFs (with --no-email).")
        parser.add_argument("--no-email", action="store_true", help="Do not email the invoices (backfills).")

    def handle(self, *args, period=None, orgs=None, no_pdf=False, no_email=False, **options):
        if no_pdf and not no_email:
            # An email attaches the PDF, rendering it if need be: --no-pdf alone would skip nothing.
            raise CommandError("--no-pdf needs --no-email: each email renders its invoice's PDF. "
                               "For a backfill pass both; to skip only the emails, --no-email.")
        try:
            bounds = engine.period_for(period) if period else None
            run, todo = engine.invoice_run_start(period=bounds, org_ids=orgs, now=timezone.now(), dispatch=False)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        counts = {s: 0 for s in RunItemStatus.values}
        for chunk in engine.chunks(todo):
            # Failures are recorded on their run items; the others go on.
            statuses = engine.invoice_organizations(run_id=run.pk, organization_ids=chunk, render_pdf=not no_pdf,
                                                    send_email=not no_email)
            for status in statuses.values():
                counts[status] += 1
        failures = InvoiceRunItem.objects.filter(run=run, status=RunItemStatus.FAILED).order_by("organization_id")
        for org_id, error in failures.values_list("organization_id", "last_error"):
            self.stderr.write(f"organisation {org_id}: {error}")
        failed = failures.count()
        self.stdout.write(
            f"{run.period_start:%Y-%m}: {counts['invoiced']} invoiced, {counts['skipped']} without charges, "
            f"{failed} failed, {len(todo)} examined"
        )
        if failed:
            raise CommandError(f"{failed} organisation(s) failed; see the run in the console and run again.")
