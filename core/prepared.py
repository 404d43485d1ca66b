"""Server-side prepared statements for the few big statements run many times a minute.

Metering's rating statements are long (a dozen CTEs over state intervals, add-ons and the
effective-rate view): PostgreSQL spends ~18 ms planning one and ~6 ms running it for a
chunk's hour. psycopg2 sends every statement as text, so each run is planned again.
`execute` prepares a statement once per database session (`PREPARE`, named after a hash
of its text, the `%(name)s` parameters turned into `$n`), then runs `EXECUTE` with the
values, under `plan_cache_mode = force_generic_plan` for that statement's transaction so
PostgreSQL plans it once per session, not once per run (the SET LOCAL and the EXECUTE go
in one message: one round trip, and outside a transaction the message's own implicit
transaction bounds the SET). A statement's text must not hold
values that change between runs (they go in `params`), or each would be prepared anew.

Sessions are tracked by the psycopg2 connection object: a reconnect starts a new list. A
statement that fails leaves the prepared list as it was (PREPARE is not transactional,
and a failed transaction still holds it), so a retry does not prepare it twice.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection

_PARAM = re.compile(r"%\((\w+)\)s")
# raw psycopg2 connection -> names prepared in that session
_prepared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_converted: dict[str, tuple[str, str, list[str]]] = {}


def _convert(sql: str) -> tuple[str, str, list[str]]:
    """(statement name, text with $n placeholders, parameter names in $n order)."""
    found = _converted.get(sql)
    if found is None:
        order: list[str] = []

        def number(match: re.Match) -> str:
            name = match.group(1)
            if name not in order:
                order.append(name)
            return f"${order.index(name) + 1}"

        text = _PARAM.sub(number, sql).replace("%%", "%")
        name = "cb_" + hashlib.sha1(sql.encode()).hexdigest()[:16]
        found = _converted[sql] = (name, text, order)
    return found


def _type(value: Any) -> str:
    """The parameter's SQL type, declared in PREPARE (an untyped `$n` in a select list
    would be text)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, Decimal):
        return "numeric"
    if isinstance(value, datetime):
        return "timestamptz"
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return "bigint[]"
        return "text[]"
    return "text"


def statement(sql: str, params: dict[str, Any]) -> tuple[str, str, list[str], list[str]]:
    """(name, text with $n, parameter names in $n order, their types) of `sql` run with `params`."""
    base, text, order = _convert(sql)
    types = [_type(params[p]) for p in order]
    return base + hashlib.sha1(",".join(types).encode()).hexdigest()[:6], text, order, types


def execute(cursor: Any, sql: str, params: dict[str, Any]) -> None:
    """Run `sql` (named `%(…)s` parameters) as a prepared statement of this session; the
    cursor then holds its result as after `cursor.execute`. In a transaction or not."""
    name, text, order, types = statement(sql, params)
    raw = connection.connection
    done = _prepared.setdefault(raw, set())
    if name not in done:
        declared = f" ({', '.join(types)})" if types else ""
        cursor.execute(f"PREPARE {name}{declared} AS {text}")  # no parameters: no % escaping
        done.add(name)
    placeholders = ", ".join(f"%({p})s" for p in order)
    run = f"EXECUTE {name} ({placeholders})" if order else f"EXECUTE {name}"
    # One round trip: the two statements of one message run as one transaction (an
    # implicit one outside a transaction), so SET LOCAL holds for the EXECUTE and the
    # cursor holds the EXECUTE's rows.
    cursor.execute(f"SET LOCAL plan_cache_mode = force_generic_plan; {run}", params)
