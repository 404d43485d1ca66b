"""Gapless numbers per series and year: `INV-2026-000123`, `CN-2026-000007`.

`next_numbers` (and `next_number`, one of them) must be called inside the transaction
that issues the documents. It takes a whole chunk's numbers in one counter update
(UPDATE … SET last_number = last_number + n … RETURNING), which locks the series'
counter row until that transaction ends, so concurrent issuers queue on the row, and a
rollback also rolls the counter back: no number is ever skipped or used twice. Callers
take the numbers last, after everything else the transaction writes but the numbered
rows (the invoices were stored before, the ledger posted before): every issuer of the
series waits from the counter update to the commit.
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
    return next_numbers(series, year, 1)[0]


def next_numbers(series: str, year: int, count: int) -> list[str]:
    """`count` consecutive numbers of the series and year, in one counter update."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("next_number must run inside the issuing transaction")
    if count < 1:
        return []
    n = _increment(series, year, count)
    if n is None:
        # First document of the year: create the row; a concurrent creator wins the
        # unique index and we lock theirs instead.
        try:
            with transaction.atomic():
                NumberSequence.objects.create(series=series, year=year, last_number=0)
        except IntegrityError:
            pass
        n = _increment(series, year, count)
        if n is None:
            raise RuntimeError(f"No {series} {year} number sequence after creating it.")
    return [format_number(series, year, k) for k in range(n - count + 1, n + 1)]


def _increment(series: str, year: int, count: int) -> int | None:
    """Add `count` to the counter and return the last number taken, in one round trip:
    the UPDATE takes the row lock (as SELECT … FOR UPDATE would) and holds it until the
    transaction ends."""
    table = connection.ops.quote_name(NumberSequence._meta.db_table)
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {table} SET last_number = last_number + %s WHERE series = %s AND year = %s "  # noqa: S608 - the model's table
            "RETURNING last_number",
            [count, series, year],
        )
        row = cur.fetchone()
    return row[0] if row else None
