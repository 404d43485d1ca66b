"""core.copyrows: what COPY writes reads back as the INSERT it replaces would have written."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import connection

from core.copyrows import copy_rows, encode

pytestmark = pytest.mark.django_db

TEXTS = ["", "plain", "tab\there", "new\nline", "cr\rlf\r\n", "back\\slash", "\\.", "\\N", "ünï cödé €", "a\\tb"]


@pytest.fixture
def table():
    with connection.cursor() as cur:
        cur.execute("CREATE TEMP TABLE copy_probe (n bigint, t text, d numeric(30,12), ts timestamptz, day date,"
                    " flag boolean)")
    yield "copy_probe"


def _read(table: str) -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute(f"SELECT n, t, d, ts, day, flag FROM {table} ORDER BY n")  # noqa: S608 - the test's table
        return cur.fetchall()


def test_text_nulls_and_empty_strings_come_back_as_they_went(table):
    rows = [(i, text, None, None, None, None) for i, text in enumerate(TEXTS)] + [(99, None, None, None, None, None)]
    assert copy_rows(table, ["n", "t", "d", "ts", "day", "flag"], rows) == len(rows)
    assert [r[1] for r in _read(table)] == [*TEXTS, None]


def test_numbers_times_and_booleans_read_back_equal_and_rounded_as_an_insert_rounds():
    with connection.cursor() as cur:
        cur.execute("CREATE TEMP TABLE copy_numbers (n bigint, d numeric(30,12), ts timestamptz, day date, flag boolean)")
    berlin = timezone(timedelta(hours=1))
    rows = [
        (1, Decimal("0E-12"), datetime(2024, 12, 1, tzinfo=UTC), date(2024, 2, 29), True),
        (2, Decimal("1E+3"), datetime(2024, 12, 1, 1, 0, 0, 123456, tzinfo=berlin), date(2024, 12, 31), False),
        (3, Decimal("0.1234567890125"), datetime(2025, 1, 1, tzinfo=UTC), date(2025, 1, 1), None),
        (9_007_199_254_740_993, Decimal("-12345678901234567.123456789012"), None, None, True),
    ]
    copy_rows("copy_numbers", ["n", "d", "ts", "day", "flag"], rows)
    with connection.cursor() as cur:
        cur.execute("SELECT n, d, ts, day, flag FROM copy_numbers ORDER BY n")
        got = cur.fetchall()
        cur.execute("SELECT %s::numeric(30,12)", [Decimal("0.1234567890125")])
        rounded_by_insert = cur.fetchone()[0]
    assert got[0] == (1, Decimal("0E-12"), datetime(2024, 12, 1, tzinfo=UTC), date(2024, 2, 29), True)
    assert got[1][1] == Decimal("1000") and got[1][2] == datetime(2024, 12, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert got[2][1] == rounded_by_insert == Decimal("0.123456789013") and got[2][4] is None
    assert got[3][0] == 9_007_199_254_740_993 and got[3][1] == Decimal("-12345678901234567.123456789012")


def test_a_naive_time_an_unknown_type_or_a_short_row_is_refused_before_anything_is_sent(table):
    with pytest.raises(ValueError, match="naive"):
        encode(datetime(2024, 1, 1))
    with pytest.raises(TypeError):
        encode(1.5)
    with pytest.raises(ValueError, match="2 values for 3 columns"):
        copy_rows(table, ["n", "t", "d"], [(1, "x", None), (2, "y")])
    assert _read(table) == []
    assert copy_rows(table, ["n"], []) == 0


def test_the_copy_is_in_the_query_log_as_one_statement(table):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        copy_rows(table, ["n", "t"], [(1, "a"), (2, "b")])
    assert [q["sql"] for q in ctx.captured_queries] == ['COPY "copy_probe" ("n", "t") FROM STDIN WITH (FORMAT text) -- 2 rows']
