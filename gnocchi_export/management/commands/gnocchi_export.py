"""`python manage.py gnocchi_export [--from-run N]`: the export now, as the beat task runs it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from gnocchi_export import services
from gnocchi_export.models import GnocchiExport


class Command(BaseCommand):
    help = ("Send the rated usage after the watermark to Gnocchi (GNOCCHI_EXPORT_URL). --from-run N moves the "
            "watermark back to run N first, so every run after it is sent again (safe: a point sent again "
            "replaces itself).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from-run", type=int, help="send again every metering run after this id")

    def handle(self, *args: Any, from_run: int | None = None, **options: Any) -> None:
        if not settings.GNOCCHI_EXPORT_URL:
            raise CommandError("GNOCCHI_EXPORT_URL is not set: no Gnocchi to export to.")
        if from_run is not None:
            state, _ = GnocchiExport.objects.get_or_create(name="default")
            if from_run > state.run_id:
                raise CommandError(f"--from-run {from_run} is after the watermark ({state.run_id}): it only moves "
                                   "back, so that no run is skipped.")
            GnocchiExport.objects.filter(pk=state.pk).update(run_id=from_run)
        result = services.export_pending()
        self.stdout.write(f"runs={result.runs} measures={result.measures} resources_created={result.resources_created} "
                          f"watermark={result.watermark}")
        if result.error:
            raise CommandError(f"Gnocchi: {result.error} (the watermark stays at {result.watermark}; run it again)")
