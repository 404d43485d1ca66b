"""A migration test's own empty database, migrated forward only as far as the test asks.

A migration test on the shared test database had to unapply every migration that depends
on the one it starts from (most of the project's schema, backwards), then apply them all
again: a minute and a half of the suite for one test. On a scratch database the test
applies only the migrations its starting point needs (`migrate(targets)` from empty),
then the one under test, and the shared database is never touched. The database is
created from `template0` on the test database's server, named after it (so two pytest
workers never share one) and dropped at the end.

`as_default()` runs the project's current code against the scratch database (after the
test has migrated it to the leaf nodes): the default connection is swapped for the
scratch one for the duration of the block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import StateApps

ALIAS = "scratch_migrations"


class ScratchDatabase:
    def __init__(self, name: str) -> None:
        self.name = name
        self.connection = connections[ALIAS]

    def migrate(self, targets: list[tuple[str, str]] | None = None) -> StateApps:
        """Migrate (forwards or backwards) to `targets` (None: every app's last migration);
        the historical models of that state, bound to this database through `objects`'s
        `.using(ALIAS)`: use `db_manager(ALIAS)` or `using(ALIAS)`."""
        executor = MigrationExecutor(self.connection)
        executor.loader.build_graph()
        targets = targets or executor.loader.graph.leaf_nodes()
        executor.migrate(targets)
        return executor.loader.project_state(targets).apps

    def cursor(self) -> Any:
        return self.connection.cursor()

    @contextlib.contextmanager
    def as_default(self) -> Iterator[None]:
        saved = connections["default"]
        connections["default"] = self.connection
        try:
            yield
        finally:
            connections["default"] = saved


@contextlib.contextmanager
def scratch_database() -> Iterator[ScratchDatabase]:
    name = f"{connection.settings_dict['NAME']}_scratch"[:63]
    _admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}" TEMPLATE template0')
    # Registered on this thread only, not in the settings: Django's test case allows a
    # connection it was not told about only when it was created this way.
    default = connections["default"]
    connections[ALIAS] = default.__class__({**default.settings_dict, "NAME": name}, ALIAS)
    try:
        yield ScratchDatabase(name)
    finally:
        with contextlib.suppress(Exception):
            connections[ALIAS].close()
        del connections[ALIAS]
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(*statements: str) -> None:
    """CREATE/DROP DATABASE run outside any transaction, on the server's maintenance database."""
    import psycopg2

    s = connection.settings_dict
    conn = psycopg2.connect(dbname="postgres", user=s["USER"] or None, password=s["PASSWORD"] or None,
                            host=s["HOST"] or None, port=s["PORT"] or None)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)
    finally:
        conn.close()
