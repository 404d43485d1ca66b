"""Finalizing an invoice while credits hibernates the same organisation must not
deadlock. Finalize locked the invoice and, through select_related, the organisation row
FOR UPDATE, then the balance (the ledger draw); hibernation locks the balance, then
inserts rows that point at the organisation, and the foreign-key check's KEY SHARE lock
waits for that FOR UPDATE: the opposite order. The invoice services now lock FOR NO KEY
UPDATE, which still serialises them with each other but lets foreign-key checks pass."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.tests.concurrency import run_second_while_first_holds
from credits import hibernation, services
from credits.models import Balance, LedgerEntry
from invoices.models import Invoice, InvoiceStatus
from invoices.services import lifecycle
from invoices.tests.factories import make_invoice
from usage.tests.factories import ResourceFactory


@pytest.mark.django_db(transaction=True)
def test_finalizing_while_credits_hibernates_does_not_deadlock(org, monkeypatch):
    services.ledger_post(organization=org, amount=Decimal("-5"), kind="usage", reason="usage")
    Balance.objects.filter(organization=org).update(depleted_at=timezone.now() - timedelta(hours=1))
    balance = Balance.objects.get(organization=org)
    ResourceFactory(organization=org, state="running")
    draft = make_invoice(org, finalize=False)

    invoice_locked = threading.Event()
    original = lifecycle.ledger_post

    def slow_post(**kwargs):  # the invoice (and its organisation) are locked: let hibernation start
        invoice_locked.set()
        time.sleep(1.0)
        return original(**kwargs)

    monkeypatch.setattr(lifecycle, "ledger_post", slow_post)

    errors = run_second_while_first_holds(
        lambda: lifecycle.invoice_finalize(invoice=draft, render_pdf=False),
        lambda: hibernation.hibernate(balance_id=balance.pk),
        invoice_locked,
    )
    assert not errors, errors
    balance.refresh_from_db()
    assert balance.hibernated_at is not None
    assert Invoice.objects.get(pk=draft.pk).status == InvoiceStatus.OPEN
    assert LedgerEntry.objects.filter(reference=f"invoice:{draft.pk}").count() == 1
