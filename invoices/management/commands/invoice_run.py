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
        parser.add_argument("--no-pdf", action="store_true", help="Skip PDFs and emails (backfills).")

    def handle(self, *args, period=None, orgs=None, no_pdf=False, **options):
        try:
            bounds = engine.period_for(period) if period else None
            run, todo = engine.invoice_run_start(period=bounds, org_ids=orgs, now=timezone.now(), dispatch=False)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        counts = {s: 0 for s in RunItemStatus.values}
        for org_id in todo:
            try:
                status = engine.invoice_organization(run_id=run.pk, organization_id=org_id, render_pdf=not no_pdf)
            except Exception as exc:  # recorded on the run item; the others go on
                status = RunItemStatus.FAILED
                self.stderr.write(f"organisation {org_id}: {type(exc).__name__}: {exc}")
            counts[status] += 1
        failed = InvoiceRunItem.objects.filter(run=run, status=RunItemStatus.FAILED).count()
        self.stdout.write(
            f"{run.period_start:%Y-%m}: {counts['invoiced']} invoiced, {counts['skipped']} without charges, "
            f"{failed} failed, {len(todo)} examined"
        )
        if failed:
            raise CommandError(f"{failed} organisation(s) failed; see the run in the console and run again.")
