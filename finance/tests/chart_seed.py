"""The chart of accounts the data migration seeds, seeded again by the migration's own
function when a transactional test elsewhere in the session has emptied every table."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

from django.apps import apps
from django.db import connection


def ensure_chart_of_accounts() -> None:
    from finance.models import Account

    if not Account.objects.exists():
        migration = importlib.import_module("finance.migrations.0002_seed_chart_of_accounts")
        migration.seed(apps, SimpleNamespace(connection=connection))
