"""`python manage.py benchmark NAME [options]`: speed is measured here, never in tests.

Each benchmark lives in its app and is named in settings.BENCHMARKS as
"name": "app.benchmarks.module". The module provides `add_arguments(parser)` and
`run(options: dict, stdout) -> str`; the returned line is printed last, and must hold the
figure the issue asks for beside a baseline measured in the same run.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_module


class Command(BaseCommand):
    help = "Run a named benchmark; its figure is the last line printed."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="benchmark", required=True, metavar="NAME")
        for name, path in sorted(settings.BENCHMARKS.items()):
            module = import_module(path)
            sp = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else "")
            module.add_arguments(sp)

    def handle(self, *args, benchmark, **options):
        path = settings.BENCHMARKS.get(benchmark)
        if path is None:
            raise CommandError(f"Unknown benchmark {benchmark!r}; known: {', '.join(sorted(settings.BENCHMARKS))}")
        line = import_module(path).run(options, self.stdout)
        self.stdout.write(line)
