"""50 threads, each on its own database connection, spend and top up one balance at once."""

import threading
from decimal import Decimal

import pytest
from django.db import connections

from credits import services
from credits.models import Balance, LedgerEntry
from credits.selectors import ledger_differences

THREADS = 50


def _unlocked_balance(organization_id, currency):
    """What `_lock_balance` would be without the row lock: a plain read."""
    balance = Balance.objects.filter(organization_id=organization_id, currency=currency).first()
    if balance is None:
        Balance.objects.bulk_create([Balance(organization_id=organization_id, currency=currency)], ignore_conflicts=True)
        balance = Balance.objects.get(organization_id=organization_id, currency=currency)
    return balance


def _hammer(org):
    """Every thread starts its posts together; even threads spend, odd ones top up."""
    barrier = threading.Barrier(THREADS)
    errors = []

    def work(i):
        try:
            barrier.wait(timeout=30)
            for n in range(2):
                amount = Decimal("-1.25") if i % 2 == 0 else Decimal("3.10")
                services.ledger_post(organization=org, amount=amount, kind="usage" if amount < 0 else "topup",
                                     reason=f"thread {i} post {n}")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("row_lock", [True, False], ids=["with-row-lock", "row-lock-removed"])
def test_fifty_threads_end_with_balance_equal_to_the_ledger_only_with_the_row_lock(org, monkeypatch, row_lock):
    services.ledger_post(organization=org, amount=Decimal("1000"), kind="topup", reason="opening")
    if not row_lock:
        monkeypatch.setattr(services.ledger, "_lock_balance", _unlocked_balance)

    _hammer(org)

    balance = Balance.objects.get(organization=org)
    entries = LedgerEntry.objects.filter(organization=org)
    assert entries.count() == 1 + THREADS * 2
    expected = Decimal("1000") + 50 * (Decimal("-1.25") + Decimal("3.10"))  # 25 spenders and 25 toppers, twice
    ledger_sum = sum(e.amount for e in entries)
    assert ledger_sum == expected
    if row_lock:
        assert balance.amount == expected
        assert ledger_differences() == (1, [])
        # balance_after forms one unbroken chain: each entry starts where the previous ended.
        previous = Decimal("0")
        for e in entries.order_by("id"):
            assert e.balance_after == previous + e.amount
            previous = e.balance_after
    else:
        # Without the lock, concurrent read-modify-write loses updates.
        assert balance.amount != expected
        assert ledger_differences()[1] != []
