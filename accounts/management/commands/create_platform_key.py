from django.core.management.base import BaseCommand, CommandError

from accounts.scopes import PLATFORM_SCOPES
from accounts.services import api_key_create
from core.errors import DomainError


class Command(BaseCommand):
    help = "Create a platform API key for an integrator (acts across organisations). Prints the key once."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--scope", action="append", dest="scopes", required=True,
                            help=f"Repeatable. One of: {', '.join(sorted(PLATFORM_SCOPES))}")

    def handle(self, *args, name, scopes, **options):
        try:
            key, full = api_key_create(name=name, scopes=scopes, organization=None, by=None)
        except DomainError as exc:
            raise CommandError(exc.message)
        self.stdout.write(full)
