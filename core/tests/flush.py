"""A faster end for transactional tests, with the same end state as Django's flush.

Django's `TransactionTestCase` (pytest-django's `transactional_db`, `live_server`) ends
each test with `flush`: one TRUNCATE of every model table — some 600 relations with
their indexes and partitions, 3–6 s on this machine whatever the test wrote — then the
post_migrate signal (content types, permissions, staff groups). Most tables are empty at
that point: this asks which ones hold a row (one statement), deletes the rows of those
only, with triggers and foreign-key checks off for that transaction
(`session_replication_role = replica`: every table is emptied, so no reference is left
dangling; the ledger's append-only trigger guards against the application, not against
a test's teardown), then sends post_migrate exactly as flush does. Sequences are not
reset, as flush with `reset_sequences=False` does not.

Falls back to Django's flush when the test narrows `available_apps` or uses
`serialized_rollback` (flush's own special cases), or when the database refuses the
replication role (it needs a superuser, which the suite's database user is).
"""

from __future__ import annotations

from django.core.management.sql import emit_post_migrate_signal
from django.db import DatabaseError, connections, transaction
from django.test import TransactionTestCase

_original_teardown = TransactionTestCase._fixture_teardown


def _fast_teardown(self: TransactionTestCase) -> None:
    if self.available_apps is not None or self.serialized_rollback:
        return _original_teardown(self)
    for alias in self._databases_names(include_mirrors=False):
        if not empty_database(alias):
            return _original_teardown(self)
        emit_post_migrate_signal(verbosity=0, interactive=False, db=alias)
    return None


def tables_with_rows(alias: str) -> list[str]:
    connection = connections[alias]
    tables = sorted(connection.introspection.django_table_names(only_existing=True, include_views=False))
    if not tables:
        return []
    qn = connection.ops.quote_name
    probe = " UNION ALL ".join(f"SELECT %s WHERE EXISTS (SELECT 1 FROM {qn(t)})" for t in tables)
    with connection.cursor() as cursor:
        cursor.execute(probe, tables)
        return [row[0] for row in cursor.fetchall()]


def empty_database(alias: str) -> bool:
    """Delete every row of every model table of `alias`; False if the role may not be set."""
    connection = connections[alias]
    qn = connection.ops.quote_name
    try:
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            for table in tables_with_rows(alias):
                cursor.execute(f"DELETE FROM {qn(table)}")  # noqa: S608 - names from the introspection
    except DatabaseError:
        return False
    return True


def install() -> None:
    TransactionTestCase._fixture_teardown = _fast_teardown  # type: ignore[method-assign]
