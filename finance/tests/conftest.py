from __future__ import annotations

import pytest

from finance.tests.chart_seed import ensure_chart_of_accounts
from finance.tests.dummy_report import dummy_report  # noqa: F401 - the shared fixture
from finance.tests.usage_world import rollups  # noqa: F401 - the shared fixture
from finance.tests.world import world  # noqa: F401 - the shared fixture


@pytest.fixture(autouse=True)
def chart_of_accounts(request):
    """The chart the data migration seeds. A transactional test elsewhere in the session
    flushes every table, migration data included; the chart is seeded again for the
    tests here that need it, by the migration's own function."""
    if "db" not in request.fixturenames and "transactional_db" not in request.fixturenames \
            and not request.node.get_closest_marker("django_db"):
        return
    request.getfixturevalue("transactional_db" if _transactional(request) else "db")
    ensure_chart_of_accounts()


def _transactional(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    return bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))
