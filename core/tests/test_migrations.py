"""Migrations write to the database they migrate: a data migration that reads or writes
through `Model.objects` without `.using(schema_editor.connection.alias)` touches the
default database instead (pricing 0006, finance 0002 and usage 0007 did)."""

from __future__ import annotations

import pytest
from django.db import connection

from core.tests.scratch_db import scratch_database

# The data migrations of the project, each with the state it needs before it.
TARGETS = [("finance", "0002_seed_chart_of_accounts"), ("usage", "0007_rated_spans_and_accruals")]


def _count(cursor, table: str) -> int:
    cursor.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 - fixed table names
    return cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_data_migration_writes_to_the_database_being_migrated_and_only_there():
    with connection.cursor() as cursor:
        accounts_before = _count(cursor, "finance_account")
    with scratch_database() as scratch:
        scratch.migrate([("usage", "0006_partition_usage_events"), ("finance", "0001_chart_and_journal")])
        with scratch.cursor() as cursor:
            cursor.execute("INSERT INTO usage_meteringchunk (number, watermark_minute, updated_at) VALUES (3, 42, now())")
        scratch.migrate(TARGETS)
        with scratch.cursor() as cursor:
            assert _count(cursor, "finance_account") > 0  # the chart of accounts seeded here
            cursor.execute("SELECT rated_minute FROM usage_meteringchunk WHERE number = 3")
            assert cursor.fetchone() == (42,)
    with connection.cursor() as cursor:
        assert _count(cursor, "finance_account") == accounts_before  # and nothing added to the default
