from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.module_loading import import_string


class Command(BaseCommand):
    help = "Load the demo data (organisations, people, price book, usage…). Safe to run again."

    def handle(self, *args, **options):
        for path in settings.DEMO_SEEDERS:
            with transaction.atomic():
                import_string(path)(stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
