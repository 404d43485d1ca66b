from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Organization
from core.errors import DomainError
from core.money import format_money
from invoices import engine


class Command(BaseCommand):
    help = "Print the interim invoice of an organisation for the current month up to now (or --until)."

    def add_arguments(self, parser):
        parser.add_argument("--org", type=int, required=True, help="Organisation id.")
        parser.add_argument("--until", help="ISO-8601 time, e.g. 2026-10-10T00:00:00Z (default: now).")

    def handle(self, *args, org, until=None, **options):
        organization = Organization.objects.filter(pk=org).first()
        if organization is None:
            raise CommandError(f"No organisation with id {org}.")
        at: datetime | None = None
        if until:
            at = parse_datetime(until)
            if at is None:
                raise CommandError(f"--until {until!r} is not an ISO-8601 date and time.")
            if timezone.is_naive(at):
                raise CommandError("--until needs a time zone, e.g. 2026-10-10T00:00:00Z.")
        try:
            ctx, bill = engine.interim_bill(organization=organization, until=at)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        cur = organization.currency
        w = self.stdout.write
        w(f"Interim invoice · {organization.name} · {ctx.span_start:%Y-%m-%d %H:%M} – {ctx.span_end:%Y-%m-%d %H:%M} UTC")
        if bill is None:
            w("No charges.")
            return
        for ln in bill.lines:
            w(f"  {ln.group[:28]:<28} {ln.description[:44]:<44} {ln.quantity.normalize():>12f} {ln.unit:<6}"
              f" {format_money(ln.amount, cur):>14}")
        for label, value in (("Subtotal", bill.subtotal), ("Discounts", bill.discount_total), ("Tax", bill.tax_total),
                             ("Total", bill.total), ("Paid from credit", bill.credit_applied),
                             ("Brought forward", bill.balance_forward), ("Amount due", bill.amount_due)):
            w(f"  {label:>94} {format_money(value, cur):>14}")
        if bill.tax_note:
            w(f"  {bill.tax_note}")
