"""`benchmark reports` on a tiny fleet: it runs every registered report and its baseline
over its own schema, prints their lines and the figure, and leaves nothing behind.
(Speed is not asserted here; that is what the benchmark is for.)"""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import Organization
from finance.reports.registry import reports


@pytest.mark.django_db
def test_a_tiny_benchmark_runs_every_report_and_cleans_up():
    before = Organization.objects.count()
    out = StringIO()
    call_command("benchmark", "reports", "--orgs", "3", "--months", "2", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert re.fullmatch(r"reports orgs=3 months=2 seconds=\d+\.\d{3} baseline_seconds=\d+\.\d{3} ratio=(\d+\.\d{2}|n/a)",
                        lines[-1])
    for name, spec in reports().items():
        line = next(ln for ln in lines if ln.startswith(f"report {name}: "))
        assert ("; baseline " in line) if spec.baseline is not None else ("; no baseline" in line)
    assert "report credit-held: " in out.getvalue() and "report receivables: " in out.getvalue()
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'bench_reports'")
        assert cur.fetchone()[0] == 0
        cur.execute("SHOW search_path")
        assert "bench_reports" not in cur.fetchone()[0]
    assert Organization.objects.count() == before  # the fleet lived in its own schema only
