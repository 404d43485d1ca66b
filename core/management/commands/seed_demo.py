from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.module_loading import import_string


class Command(BaseCommand):
    help = "Load the demo data (organisations, people, price book, usage…). Safe to run again."

    def handle(self, *args, **options):
        if not settings.DEMO_SEEDERS:
            # Production settings empty the list: demo passwords and the public demo
            # two-factor key must never reach a real database.
            raise CommandError("These settings load no demo data (DEMO_SEEDERS is empty).")
        for path in settings.DEMO_SEEDERS:
            with transaction.atomic():
                import_string(path)(stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
