"""Lists organisations whose stored country or VAT id fails today's rules (accounts.tax_ids):
rows saved before they were enforced. Nothing is changed: a wrong country charges the wrong
tax and a VAT id that fails its check digits no longer gets the reverse charge, so each
row needs the customer's real details, not a guess. Exits 1 when it finds any."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from accounts.tax_ids import billing_profile_problems


class Command(BaseCommand):
    help = "Report organisations whose country or VAT id is not valid (changes nothing)."

    def handle(self, *args, **options):
        bad = 0
        rows = Organization.objects.exclude(country="", vat_id="").order_by("pk").values_list(
            "pk", "name", "country", "vat_id")
        for pk, name, country, vat_id in rows.iterator(chunk_size=2000):
            for problem in billing_profile_problems(country, vat_id):
                bad += 1
                self.stdout.write(f"organization {pk} ({name}): {problem}")
        if bad:
            raise CommandError(f"{bad} billing profile problem(s): fix them in the console (Organizations).")
        self.stdout.write("Every stored country and VAT id is valid.")
