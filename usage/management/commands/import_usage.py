import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from usage import rollups
from usage.imports import COLUMNS, usage_import


class Command(BaseCommand):
    help = ("Load legacy usage history from a CSV file with the columns "
            f"{', '.join(COLUMNS)}. Safe to run again: rows already loaded are skipped.")

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--source", default="legacy", help="Names the system the ids come from.")

    def handle(self, *args, file: Path, source: str, **options):
        if not file.is_file():
            raise CommandError(f"{file}: no such file.")
        with file.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise CommandError(f"{file}: the header lacks {', '.join(missing)} (expected {', '.join(COLUMNS)}).")
            result = usage_import(rows=reader, source=source)
        rollups.rollup_pending()
        for error in result.errors:
            self.stderr.write(error)
        self.stdout.write(f"{result.imported} rows imported, {result.skipped} already there, "
                          f"{len(result.errors)} refused")
        if result.errors:
            raise CommandError(f"{len(result.errors)} rows were refused; fix them and run again "
                               "(the rows loaded are kept and will be skipped).")
