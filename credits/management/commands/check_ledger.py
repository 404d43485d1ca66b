"""`python manage.py check_ledger`: prove balance = sum(ledger) for every organisation."""

from django.core.management.base import BaseCommand, CommandError

from credits.selectors import ledger_differences


class Command(BaseCommand):
    help = "Compare every cached balance with the sum of its ledger entries; exit non-zero on any difference."

    def handle(self, *args, **options):
        checked, differences = ledger_differences()
        for d in differences:
            self.stderr.write(
                f"organisation {d['organization_id']} {d['currency']}: balance {d['balance']} "
                f"but ledger sums to {d['ledger']} (promo {d['promo_balance']} vs {d['promo_ledger']}; "
                f"open grants {d['promo_grants']})"
            )
        if differences:
            raise CommandError(f"{len(differences)} of {checked} balances differ from their ledger.")
        self.stdout.write(self.style.SUCCESS(f"ledger ok: {checked} balances equal the sum of their entries"))
