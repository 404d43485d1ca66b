"""The invoicing benchmark at tiny size: it runs end to end and prints its last line in
the issue's format (never timed here; figures come from `manage.py benchmark`)."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from invoices.models import Invoice

LAST_LINE = re.compile(r"^invoicing orgs=2 seconds=[0-9.]+ invoices_per_second=[0-9]+ baseline_seconds=[0-9.]+ "
                       r"ratio=[0-9.]+$")


@pytest.mark.django_db(transaction=True)
def test_the_invoicing_benchmark_runs_at_tiny_size_and_cleans_up_after_itself():
    out = StringIO()
    call_command("benchmark", "invoicing", "--orgs", "2", "--workers", "1", "--period", "2025-01", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert LAST_LINE.match(lines[-1]), lines[-1]
    issued = Invoice.objects.exclude(status="draft")
    assert issued.count() == 2
    assert min(inv.lines.count() for inv in issued) >= 12  # ten resources, a price change, a hibernation
    # Run again: the next free month, the same work; no baseline table, hourly or daily row is left behind.
    call_command("benchmark", "invoicing", "--orgs", "2", "--workers", "1", "--period", "2025-01", stdout=StringIO())
    assert sorted(set(Invoice.objects.values_list("period_start__month", flat=True))) == [1, 12]
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'bench\\_%%'")
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM usage_usagehourly")
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM usage_usagedaily")
        assert cur.fetchone()[0] == 0
