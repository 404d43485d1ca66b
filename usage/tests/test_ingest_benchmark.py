"""Smoke test of `manage.py benchmark ingest` at a tiny size: gunicorn, HTTP, the
baseline and the cleanup all run, and the last line has the issue's format. No timing
is asserted (speed is measured by the benchmark, never in tests)."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.db import connection

from usage.models import EventKey, Resource, UsageEvent


@pytest.mark.django_db(transaction=True)
def test_the_ingest_benchmark_runs_at_a_tiny_size_and_cleans_up():
    out = io.StringIO()
    call_command("benchmark", "ingest", "--events", "2000", "--resources", "20", "--workers", "1", "--clients", "1",
                 stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert "1000 accepted, 1000 duplicate, 0 rejected, 0 failed requests" in lines[0]
    assert not any("MISMATCH" in line for line in lines)
    assert re.fullmatch(r"ingest events=2000 events_per_second=\d+ baseline_rows_per_second=\d+ ratio=[\d.]+",
                        lines[-1])
    assert not UsageEvent.objects.exists() and not EventKey.objects.exists()
    assert not Resource.objects.filter(organization__is_active=True).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM pg_class WHERE relname LIKE 'bench_ingest%%'")
        assert cursor.fetchone()[0] == 0
