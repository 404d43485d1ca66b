import time

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Migrate, load the demo data and print the banner, each step timed (used by `make run`)."

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000")

    def handle(self, *args, **options):
        from django.db import connection
        from django.db.migrations.executor import MigrationExecutor

        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if pending:
            self._step(f"Applying {len(pending)} migrations (first start: ~20 s)",
                       lambda: call_command("migrate", interactive=False, verbosity=0))
        else:
            self.stdout.write("  Migrations: up to date.")
        self._step("Loading the demo data (first start: ~1 min; later: a few seconds)",
                   lambda: call_command("seed_demo", stdout=_Quiet()))
        call_command("demo_banner", port=options["port"])

    def _step(self, label: str, work) -> None:
        self.stdout.write(f"  {label}…")
        self.stdout.flush()
        t0 = time.monotonic()
        work()
        self.stdout.write(f"    done in {time.monotonic() - t0:.1f} s")


class _Quiet:
    """seed_demo narrates every row; the launcher only says how long it took."""

    def write(self, *_args, **_kwargs) -> None:
        pass

    def flush(self) -> None:
        pass
