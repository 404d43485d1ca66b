"""Money that reaches an invoice after it was settled some other way is never lost: what
is still owed is recorded on the invoice, the rest is kept as the customer's credit, and
a refund gives back that credit first."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import AuditLog
from payments import dunning, services
from payments.models import PaymentStatus, Provider, Purpose, WebhookEvent, WebhookStatus
from payments.tests.conftest import return_urls
from payments.tests.factories import make_open_invoice

pytestmark = pytest.mark.django_db


def _checkout(org, invoice, amount):
    return services.payment_start_checkout(organization=org, purpose=Purpose.INVOICE, provider=Provider.STRIPE,
                                           amount=Decimal(amount), invoice=invoice, urls=return_urls)


def test_autopay_ends_the_checkout_the_customer_left_open_so_the_invoice_is_charged_once(
        org, fake_stripe, stripe_card, balance):
    from payments.tests.fakes import CheckoutClosed

    org.billing_mode = "postpaid"
    org.save()
    stripe_card(org)
    invoice = make_open_invoice(org, amount_due=Decimal("120.00"))
    late = _checkout(org, invoice, "120.00")  # the customer opens a checkout and wanders off
    autopaid = dunning.autopay_charge(invoice_id=invoice.pk)  # the due date: the saved card pays
    invoice.refresh_from_db()
    late.refresh_from_db()
    assert autopaid.status == PaymentStatus.SUCCEEDED and invoice.status == "paid"
    assert late.status == PaymentStatus.CANCELED
    assert fake_stripe.objects[late.provider_checkout_id]["status"] == "expired"
    with pytest.raises(CheckoutClosed):  # then comes back: the page is over, nothing is charged twice
        fake_stripe.complete_checkout(late.provider_checkout_id)
    assert balance(org) == Decimal("120.00")


def test_a_delayed_checkout_that_clears_after_autopay_settled_the_invoice_becomes_credit_not_a_lost_payment(
        org, fake_stripe, stripe_card, deliver_stripe, balance, staff_user, django_capture_on_commit_callbacks):
    org.billing_mode = "postpaid"
    org.save()
    stripe_card(org)
    invoice = make_open_invoice(org, amount_due=Decimal("120.00"))
    late = _checkout(org, invoice, "120.00")
    # The customer pays by bank debit on Stripe's page: done there, the money days away;
    # the page's webhook has not arrived when autopay runs.
    fake_stripe.complete_checkout(late.provider_checkout_id, async_payment=True)
    autopaid = dunning.autopay_charge(invoice_id=invoice.pk)
    invoice.refresh_from_db()
    late.refresh_from_db()
    assert autopaid.status == PaymentStatus.SUCCEEDED and invoice.status == "paid"
    assert late.status == PaymentStatus.PROCESSING  # read from Stripe when autopay tried to end it
    before = balance(org)

    for event in fake_stripe.settle_async(late.provider_checkout_id, succeeded=True):  # then the debit clears
        assert deliver_stripe(event).status_code == 200
    late.refresh_from_db()
    invoice.refresh_from_db()
    assert late.status == PaymentStatus.SUCCEEDED
    assert (invoice.status, invoice.amount_paid) == ("paid", Decimal("120.00"))  # not paid twice
    assert balance(org) == before + Decimal("120.00")  # the money is the customer's credit
    assert not WebhookEvent.objects.filter(status=WebhookStatus.FAILED).exists()
    assert AuditLog.objects.filter(action="payment.excess_credited", object_id=str(late.pk)).count() == 1

    # Refunding it gives back the credit; the invoice stays paid.
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_request(payment=late, amount=None, reason="paid twice", actor=staff_user)
    invoice.refresh_from_db()
    assert balance(org) == before and invoice.status == "paid"


def test_part_owed_is_recorded_on_the_invoice_the_rest_kept_and_a_refund_takes_the_credit_first(
        org, fake_stripe, deliver_stripe, balance, staff_user, django_capture_on_commit_callbacks):
    from invoices.services import credit_note_create

    invoice = make_open_invoice(org, amount_due=Decimal("100.00"))
    payment = _checkout(org, invoice, "100.00")
    credit_note_create(invoice=invoice, reason="Goodwill for an outage", amount=Decimal("40.00"))
    before = balance(org)
    for event in fake_stripe.complete_checkout(payment.provider_checkout_id):
        deliver_stripe(event)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", Decimal("60.00"))
    assert balance(org) == before + Decimal("100.00")  # 60 settles the invoice, 40 kept as credit

    payment.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_request(payment=payment, amount=Decimal("70.00"), reason="customer asked", actor=staff_user)
    invoice.refresh_from_db()
    # 40 of credit first, then 30 of the invoice payment: the invoice owes 30 again.
    assert (invoice.status, invoice.amount_paid) == ("open", Decimal("30.00"))
    assert balance(org) == before + Decimal("30.00")


def test_a_payment_for_an_invoice_carried_forward_settles_the_invoice_that_carries_it(
        org, fake_stripe, deliver_stripe):
    october = make_open_invoice(org, amount_due=Decimal("80.00"))
    payment = _checkout(org, october, "80.00")
    november = make_open_invoice(org, amount_due=Decimal("80.00"))
    october.carried_to = november
    october.save(update_fields=["carried_to"])  # the November run carried October's balance
    for event in fake_stripe.complete_checkout(payment.provider_checkout_id):
        deliver_stripe(event)
    october.refresh_from_db()
    november.refresh_from_db()
    assert (november.status, november.amount_paid) == ("paid", Decimal("80.00"))
    assert october.status == "paid"  # settled with November
