"""Two builders of the same day at once (the beat task and someone running the command):
one builds it, the other waits on its day row and then writes nothing."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection

from accounts.tests.factories import OrganizationFactory
from credits.services import ledger_post
from finance import journal
from finance.journal import journal_build_day
from finance.models import JournalDay, JournalEntry, LedgerDayClose


@pytest.mark.django_db(transaction=True)
def test_two_builders_of_one_day_build_it_once(monkeypatch):
    org = OrganizationFactory(currency="EUR")
    ledger_post(organization=org, amount=Decimal("10.00"), kind="adjustment", reason="Goodwill",
                at=datetime(2026, 11, 2, 9, tzinfo=UTC))
    ledger_post(organization=org, amount=Decimal("-0.123456789012"), kind="usage", reason="Usage",
                at=datetime(2026, 11, 2, 10, tzinfo=UTC))
    inside = threading.Event()
    release = threading.Event()
    write = journal._write

    def slow_write(day, entries):
        # The first builder holds its day row, uncommitted, while the second tries.
        inside.set()
        release.wait(10)
        write(day, entries)

    monkeypatch.setattr(journal, "_write", slow_write)
    results = {}

    def build(name):
        try:
            results[name] = journal_build_day(date(2026, 11, 2))
        finally:
            connection.close()

    first = threading.Thread(target=build, args=("first",))
    first.start()
    assert inside.wait(10)
    monkeypatch.setattr(journal, "_write", write)
    second = threading.Thread(target=build, args=("second",))
    second.start()
    second.join(1)
    assert second.is_alive()  # waiting on the first's uncommitted day row
    release.set()
    first.join(10)
    second.join(10)
    assert results == {"first": True, "second": False}
    assert JournalDay.objects.count() == 1
    assert JournalEntry.objects.count() == 2
    assert LedgerDayClose.objects.get().amount == Decimal("9.876543210988")
