"""Receivables ages only the invoices that can owe something at T: not those paid before T
with nothing dated T or later. These are the cases where the invoice's state today and
its state at T differ, checked against figures by hand (as of T, owed = amount due −
payments received before T + reversals before T − credit notes before T)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from accounts.models import BillingMode
from accounts.tests.factories import OrganizationFactory
from finance.tests.test_report_receivables import aged, issue, t
from invoices import services as invoice_services
from invoices.models import InvoiceStatus

D = Decimal


@pytest.fixture
def r(db, time_machine):
    time_machine.move_to(t(12, 3, 9), tick=False)
    return OrganizationFactory(name="R", currency="EUR", country="DE", billing_mode=BillingMode.POSTPAID,
                               payment_terms_days=0)


def owed(org, end: date) -> Decimal:
    rows = aged(date(2026, 11, 1), end, organization_id=org.pk).rows
    return rows[0]["total"] if rows else D("0.00")


def test_a_payment_recorded_late_but_dated_before_t_settles_it_only_with_what_came_before(r, time_machine):
    """60.00 issued 1 Nov; 20.00 received 25 Nov; then 40.00 recorded on 26 Nov as received
    on 10 Nov settles it, `paid_at` 10 Nov. As of 20 Nov it owed 20.00 (the 25 Nov payment
    had not come), though it is paid and was 'paid' before then."""
    inv = issue(r, 10, "60.00", issued=t(11, 1))
    time_machine.move_to(t(11, 25, 12), tick=False)
    invoice_services.invoice_record_payment(invoice=inv, amount=D("20.00"), reference="bank:a", received_at=t(11, 25))
    time_machine.move_to(t(11, 26, 12), tick=False)
    invoice_services.invoice_record_payment(invoice=inv, amount=D("40.00"), reference="bank:b", received_at=t(11, 10))
    inv.refresh_from_db()
    assert (inv.status, inv.paid_at) == (InvoiceStatus.PAID, t(11, 10))
    assert owed(r, date(2026, 11, 5)) == D("60.00")
    assert owed(r, date(2026, 11, 20)) == D("20.00")
    assert owed(r, date(2026, 11, 26)) == D("0.00")


def test_a_reversal_opens_it_again_until_it_is_paid_again(r, time_machine):
    """50.00 issued 1 Nov, paid 5 Nov; 15.00 of it given back on 20 Nov; paid again 25 Nov."""
    inv = issue(r, 10, "50.00", issued=t(11, 1))
    time_machine.move_to(t(11, 5, 12), tick=False)
    invoice_services.invoice_record_payment(invoice=inv, amount=D("50.00"), reference="bank:1")
    time_machine.move_to(t(11, 20, 12), tick=False)
    invoice_services.invoice_reverse_payment(invoice=inv, amount=D("15.00"), reference="refund:1",
                                             payment_reference="bank:1")
    time_machine.move_to(t(11, 25, 12), tick=False)
    invoice_services.invoice_record_payment(invoice=inv, amount=D("15.00"), reference="bank:2")
    time_machine.move_to(t(12, 3, 9), tick=False)
    assert [owed(r, date(2026, 11, d)) for d in (3, 10, 22, 28)] == [D("50.00"), D("0.00"), D("15.00"), D("0.00")]
