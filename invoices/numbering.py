"""Gapless numbers per series and year: `INV-2026-000123`, `CN-2026-000007`.

`next_number` must be called inside the transaction that issues the document. It locks
the series' counter row (UPDATE … RETURNING) until that transaction ends, so
concurrent issuers queue on the row, and a rollback also rolls the counter back: no
number is ever skipped or used twice. Callers keep that transaction short (the invoice
is computed and stored before it starts), because every issuer of the series waits on it.
"""

from __future__ import annotations

from django.db import IntegrityError, connection, transaction

from invoices.models import NumberSequence

INVOICE_SERIES = "INV"
CREDIT_NOTE_SERIES = "CN"
DIGITS = 6


def format_number(series: str, year: int, n: int) -> str:
    return f"{series}-{year}-{n:0{DIGITS}d}"


def next_number(series: str, year: int) -> str:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("next_number must run inside the issuing transaction")
    n = _increment(series, year)
    if n is None:
        # First document of the year: create the row; a concurrent creator wins the
        # unique index and we lock theirs instead.
        try:
            with transaction.atomic():
                NumberSequence.objects.create(series=series, year=year, last_number=0)
        except IntegrityError:
            pass
        n = _increment(series, year)
        if n is None:
            raise RuntimeError(f"No {series} {year} number sequence after creating it.")
    return format_number(series, year, n)


def _increment(series: str, year: int) -> int | None:
    """Add one to the counter and return it, in one round trip: the UPDATE takes the
    row lock (as SELECT … FOR UPDATE would) and holds it until the transaction ends."""
    table = connection.ops.quote_name(NumberSequence._meta.db_table)
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {table} SET last_number = last_number + 1 WHERE series = %s AND year = %s "  # noqa: S608 - the model's table
            "RETURNING last_number",
            [series, year],
        )
        row = cur.fetchone()
    return row[0] if row else None
