"""core.prepared: a statement is prepared once per database session, planned once (a
generic plan), and runs again after a reconnect."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection, transaction

from core import prepared

SQL = "SELECT %(a)s + 1, %(b)s::text || '%%', %(ids)s::bigint[], %(a)s * %(amount)s"


def _plans(params: dict) -> tuple[int, int]:
    name = prepared.statement(SQL, params)[0]
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*), COALESCE(SUM(generic_plans), 0) FROM pg_prepared_statements "
                       "WHERE name = %s", [name])
        return cursor.fetchone()


@pytest.mark.django_db(transaction=True)
def test_prepared_once_planned_once_and_again_after_a_reconnect():
    for a in (1, 2, 3):
        params = {"a": a, "b": "x", "ids": [a, 7], "amount": Decimal("0.5")}
        with transaction.atomic(), connection.cursor() as cursor:
            prepared.execute(cursor, SQL, params)
            assert cursor.fetchone() == (a + 1, "x%", [a, 7], Decimal("0.5") * a)
    assert _plans(params) == (1, 3)  # one statement, three runs of its one generic plan
    connection.close()
    with transaction.atomic(), connection.cursor() as cursor:
        params = {"a": 5, "b": "y", "ids": [], "amount": Decimal("1")}
        prepared.execute(cursor, SQL, params)
        assert cursor.fetchone() == (6, "y%", [], Decimal("5"))
    assert _plans(params) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_one_round_trip_still_runs_the_generic_plan_and_sets_nothing_after():
    """Admission runs its one statement in autocommit: the SET LOCAL and the EXECUTE go
    in one message, whose implicit transaction the SET holds for, and no longer."""
    from django.test.utils import CaptureQueriesContext

    params = {"a": 11, "b": "z", "ids": [1], "amount": Decimal("2")}
    with connection.cursor() as cursor:
        prepared.execute(cursor, SQL, params)  # prepares
    with CaptureQueriesContext(connection) as sent:
        for _ in range(3):
            with connection.cursor() as cursor:
                prepared.execute(cursor, SQL, params)
                assert cursor.fetchone() == (12, "z%", [1], Decimal("22"))
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone() == ("auto",)
    assert len(sent.captured_queries) == 3
    assert _plans(params) == (1, 4)
