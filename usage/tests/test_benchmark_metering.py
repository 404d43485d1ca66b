"""Smoke test of `manage.py benchmark metering` at a tiny size: it runs, commits, and prints
its figure beside a baseline in the issue's format. Never a timed assertion."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command

from credits.models import LedgerEntry
from usage.models import MeteringRun

pytestmark = pytest.mark.django_db(transaction=True)

LAST_LINE = re.compile(
    r"^metering resources=12 orgs=3 seconds=\d+\.\d{3} baseline_seconds=\d+\.\d{3} ratio=\d+\.\d{2} "
    r"rows_per_resource_hour=\d+\.\d{2}$"
)


def test_the_metering_benchmark_runs_the_committed_minute_and_prints_its_figure_beside_a_baseline(settings):
    settings.USAGE_METERING_CHUNKS = 2
    out = io.StringIO()
    call_command("benchmark", "metering", "--resources", "12", "--orgs", "3", "--chunks", "2", "--in-place",
                 stdout=out)

    lines = out.getvalue().strip().splitlines()
    assert LAST_LINE.match(lines[-1]), lines[-1]
    assert "chunks: 2 (USAGE_METERING_CHUNKS for this run)" in lines
    # Rows per priced item (server or add-on) and per server, both printed.
    assert re.search(r"per server \d+\.\d{2} ", lines[-2]), lines[-2]
    assert any(line.startswith("hour close:") for line in lines)
    assert any(line.startswith("hour start:") for line in lines)
    # Committed, as Celery runs it: the runs were rolled up and the balances moved by the hook.
    assert MeteringRun.objects.filter(rolled_up_at__isnull=False).exists()
    assert LedgerEntry.objects.filter(kind="usage", metering_run_id__isnull=False).exists()
