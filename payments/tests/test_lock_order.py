"""A card payment succeeding while credits hibernates the same organisation must not
deadlock (issue 12, finding 6). The payment's lock (`_lock`, select_related) takes the
payment and the organisation rows, then crediting takes the balance row; hibernation,
resumption and warnings took the balance and, through select_related, the organisation
row in one statement: the opposite order. Credits now locks the balance row only
(`of=("self",)`): the organisation row, when locked at all, comes first."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.tests.concurrency import run_second_while_first_holds
from credits import hibernation
from credits.models import Balance, CreditEvent, LedgerEntry
from payments import settlement
from payments.gateways.base import PaymentSnapshot
from payments.models import PaymentStatus
from payments.services import lifecycle
from payments.tests.factories import PaymentFactory
from usage.tests.factories import ResourceFactory


@pytest.mark.django_db(transaction=True)
def test_a_payment_succeeding_while_credits_hibernates_does_not_deadlock(org, monkeypatch):
    from credits import services

    services.ledger_post(organization=org, amount=Decimal("-5"), kind="usage", reason="usage")
    Balance.objects.filter(organization=org).update(depleted_at=timezone.now() - timedelta(hours=1))
    balance = Balance.objects.get(organization=org)
    ResourceFactory(organization=org, state="running")
    payment = PaymentFactory(
        organization=org,
        status=PaymentStatus.PENDING,
        amount=Decimal("50.00"),
        provider_payment_id="sbx_pi_1",
    )
    payment_locked = threading.Event()
    original = settlement.apply_payment

    def slow_apply(p):  # the payment (and its organisation) are locked: let hibernation start
        payment_locked.set()
        time.sleep(1.0)
        original(p)

    monkeypatch.setattr(settlement, "apply_payment", slow_apply)

    errors = run_second_while_first_holds(
        lambda: lifecycle.payment_apply_snapshot(
            payment_id=payment.pk, snapshot=PaymentSnapshot(status=PaymentStatus.SUCCEEDED)
        ),
        lambda: hibernation.hibernate(balance_id=balance.pk),
        payment_locked,
    )
    assert not errors, errors
    balance.refresh_from_db()
    # Both happened: hibernated, then credited (and, resume being automatic, resumed).
    assert list(
        CreditEvent.objects.filter(kind__in=["credits.hibernated", "credits.resumed"])
        .order_by("id")
        .values_list("kind", flat=True)
    ) == ["credits.hibernated", "credits.resumed"]
    assert balance.amount == Decimal("45")
    assert LedgerEntry.objects.filter(kind="topup").count() == 1
