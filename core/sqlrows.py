"""Model instances from bare SQL, converted as the ORM converts them.

For the few reads on every request where compiling the ORM's query costs more than
running it (the API key behind every API call, the organisation and product of every
admission check: ~1 ms of Python each, against ~0.1 ms in PostgreSQL). The SQL names
the model's columns through `columns` (read from the model, so a new field is read
too); `instance` turns that slice of a row into the model, each value passed through
the converters the ORM would apply (a JSONField's text to Python, for one), through
`Model.from_db` as a queryset builds it. `get` is the one-table case.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

from django.core.exceptions import MultipleObjectsReturned
from django.db import DEFAULT_DB_ALIAS, connection, models

M = TypeVar("M", bound=models.Model)


def columns(model: type[models.Model], alias: str) -> str:
    """`alias."col", …` for the model's concrete fields, in `instance`'s order."""
    return ", ".join(f'{alias}."{f.column}"' for f in model._meta.concrete_fields)


def width(model: type[models.Model]) -> int:
    return len(model._meta.concrete_fields)


@cache
def _plan(model: type[models.Model]) -> tuple[list[str], list[tuple[int, list, Any]]]:
    fields = model._meta.concrete_fields
    converting = []
    for i, field in enumerate(fields):
        col = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
        if found:
            converting.append((i, found, col))
    return [f.attname for f in fields], converting


def instance(model: type[M], values: Sequence[Any]) -> M | None:
    """The model from `values` (its columns as `columns` lists them); None when the
    primary key is NULL (the far side of a LEFT JOIN that found nothing)."""
    names, converting = _plan(model)
    if values[names.index(model._meta.pk.attname)] is None:
        return None
    values = list(values)
    for i, converters, col in converting:
        for convert in converters:
            values[i] = convert(values[i], col, connection)
    return model.from_db(DEFAULT_DB_ALIAS, names, values)


def get(model: type[M], where: str, params: Sequence[Any]) -> M | None:
    """The one row of `model`'s table matching `where` (bare SQL over alias `t`), or None."""
    with connection.cursor() as cursor:
        sql = f"SELECT {columns(model, 't')} FROM {model._meta.db_table} t WHERE {where} LIMIT 2"  # noqa: S608 - the model's table, the caller's placeholders
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if len(rows) > 1:
        raise MultipleObjectsReturned(f"{where} matches more than one {model.__name__}")
    return instance(model, rows[0]) if rows else None
