"""Gapless numbers per series and year: `INV-2026-000123`, `CN-2026-000007`.

`next_number` must be called inside the transaction that issues the document. It locks
the series' counter row (SELECT … FOR UPDATE) until that transaction ends, so
concurrent issuers queue on the row, and a rollback also rolls the counter back: no
number is ever skipped or used twice. Callers keep that transaction short (the invoice
is computed and stored before it starts), because every issuer of the series waits on it.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from invoices.models import NumberSequence

INVOICE_SERIES = "INV"
CREDIT_NOTE_SERIES = "CN"
DIGITS = 6


def format_number(series: str, year: int, n: int) -> str:
    return f"{series}-{year}-{n:0{DIGITS}d}"


def next_number(series: str, year: int) -> str:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("next_number must run inside the issuing transaction")
    seq = NumberSequence.objects.select_for_update().filter(series=series, year=year).first()
    if seq is None:
        # First document of the year: create the row; a concurrent creator wins the
        # unique index and we lock theirs instead.
        try:
            with transaction.atomic():
                NumberSequence.objects.create(series=series, year=year, last_number=0)
        except IntegrityError:
            pass
        seq = NumberSequence.objects.select_for_update().get(series=series, year=year)
    seq.last_number += 1
    seq.save(update_fields=["last_number"])
    return format_number(series, year, seq.last_number)
