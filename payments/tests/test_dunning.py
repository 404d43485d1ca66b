"""Postpaid invoices are charged on their due date; a failure is retried on the
schedule in settings, the customer is told each time, and the last failure ends in the
final action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from payments import services
from payments.models import DunningCase, DunningStatus, Payment, PaymentStatus
from payments.tasks import autopay_due_task, dunning_due_task
from payments.tests.factories import PaymentMethodFactory, make_open_invoice

pytestmark = pytest.mark.django_db
DUE = datetime(2028, 2, 29, 9, 0, tzinfo=UTC)  # a leap day


@pytest.fixture
def postpaid(org):
    org.billing_mode = "postpaid"
    org.billing_email = "ap@customer.example"
    org.save()
    return org


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """run(task, at): the scheduler firing `task` at `at`, effects committed."""

    def _run(task, at):
        with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
            return task()

    return _run


def test_an_invoice_is_charged_once_on_its_due_date(postpaid, run):
    PaymentMethodFactory(organization=postpaid)
    invoice = make_open_invoice(postpaid, amount_due=Decimal("120.00"), due_at=DUE)
    assert run(autopay_due_task, DUE - timedelta(minutes=1)) == 0
    assert run(autopay_due_task, DUE) == 1
    assert run(autopay_due_task, DUE + timedelta(hours=1)) == 0
    invoice.refresh_from_db()
    payment = Payment.objects.get()
    assert (payment.status, payment.amount, payment.dunning_attempt) == (PaymentStatus.SUCCEEDED, Decimal("120.00"), 0)
    assert (invoice.status, invoice.amount_paid) == ("paid", Decimal("120.00"))


def test_an_invoice_opened_again_by_a_refund_is_not_charged_again_unasked(postpaid, run, staff_user):
    PaymentMethodFactory(organization=postpaid)
    invoice = make_open_invoice(postpaid, amount_due=Decimal("50.00"), due_at=DUE)
    payment = services.payment_record_bank_transfer(invoice=invoice, amount=Decimal("50.00"), reference="TRX-9",
                                                    actor=staff_user)
    run(lambda: services.refund_request(payment=payment, amount=Decimal("50.00"), reason="paid twice",
                                        actor=staff_user), DUE - timedelta(days=1))
    invoice.refresh_from_db()
    assert invoice.status == "open"
    assert run(autopay_due_task, DUE) == 0
    assert not Payment.objects.filter(flow="off_session").exists()


def test_an_organisation_without_a_saved_card_is_not_charged(postpaid, run):
    make_open_invoice(postpaid, due_at=DUE)
    assert run(autopay_due_task, DUE) == 0
    assert Payment.objects.count() == 0


def test_failed_charges_are_retried_after_1_3_5_and_7_days_then_the_invoice_is_uncollectible(
        postpaid, run, mailoutbox):
    PaymentMethodFactory(organization=postpaid, provider_method_id="sbx_pm_declining_1", last4="0341")
    invoice = make_open_invoice(postpaid, amount_due=Decimal("99.99"), due_at=DUE)
    run(autopay_due_task, DUE)
    case = DunningCase.objects.get()
    assert (case.retries_done, case.next_retry_at) == (0, DUE + timedelta(days=1))
    retries = []
    for day in (1, 3, 5, 7):
        assert run(dunning_due_task, DUE + timedelta(days=day) - timedelta(minutes=1)) == 0
        assert run(dunning_due_task, DUE + timedelta(days=day)) == 1
        retries.append(Payment.objects.get(dunning_attempt=len(retries) + 1).created_at)
    assert retries == [DUE + timedelta(days=d) for d in (1, 3, 5, 7)]
    case.refresh_from_db()
    invoice.refresh_from_db()
    assert (case.status, case.final_action, case.next_retry_at) == (DunningStatus.EXHAUSTED, "mark_uncollectible", None)
    assert invoice.status == "uncollectible"
    assert Payment.objects.filter(status=PaymentStatus.FAILED).count() == 5
    assert len(mailoutbox) == 5 and all(m.to == ["ap@customer.example"] for m in mailoutbox)
    assert "try again on 2028-03-01 (UTC)" in mailoutbox[0].body
    assert "marked uncollectible" in mailoutbox[-1].body
    assert run(dunning_due_task, DUE + timedelta(days=30)) == 0


def test_the_final_action_can_suspend_the_organisation_instead(postpaid, run, settings):
    settings.PAYMENTS_DUNNING_RETRY_DAYS = [2]
    settings.PAYMENTS_DUNNING_FINAL_ACTION = "suspend"
    PaymentMethodFactory(organization=postpaid, provider_method_id="sbx_pm_declining_1")
    invoice = make_open_invoice(postpaid, due_at=DUE)
    run(autopay_due_task, DUE)
    run(dunning_due_task, DUE + timedelta(days=2))
    postpaid.refresh_from_db()
    invoice.refresh_from_db()
    assert postpaid.is_active is False and invoice.status == "open"
    assert DunningCase.objects.get().status == DunningStatus.EXHAUSTED


def test_a_new_card_before_the_next_retry_recovers_the_invoice(postpaid, run):
    declining = PaymentMethodFactory(organization=postpaid, provider_method_id="sbx_pm_declining_1")
    invoice = make_open_invoice(postpaid, amount_due=Decimal("40.00"), due_at=DUE)
    run(autopay_due_task, DUE)
    good = PaymentMethodFactory(organization=postpaid, is_default=False)
    services.payment_method_set_default(method=good)
    run(dunning_due_task, DUE + timedelta(days=1))
    invoice.refresh_from_db()
    case = DunningCase.objects.get()
    assert invoice.status == "paid" and case.status == DunningStatus.RECOVERED
    assert Payment.objects.get(dunning_attempt=1).payment_method == good != declining
    assert run(dunning_due_task, DUE + timedelta(days=3)) == 0


def test_paying_by_hand_during_dunning_closes_the_case(postpaid, run, staff_user):
    PaymentMethodFactory(organization=postpaid, provider_method_id="sbx_pm_declining_1")
    invoice = make_open_invoice(postpaid, amount_due=Decimal("40.00"), due_at=DUE)
    run(autopay_due_task, DUE)
    with time_machine.travel(DUE + timedelta(hours=5), tick=False):
        run(lambda: services.payment_record_bank_transfer(invoice=invoice, amount=Decimal("40.00"),
                                                          reference="SEPA-123", actor=staff_user),
            DUE + timedelta(hours=5))
    assert DunningCase.objects.get().status == DunningStatus.RECOVERED
    assert run(dunning_due_task, DUE + timedelta(days=1)) == 0


def test_with_stripe_a_declined_autopay_opens_dunning_and_a_new_card_recovers_it(postpaid, run, fake_stripe,
                                                                                stripe_card, mailoutbox):
    stripe_card(postpaid, declines=True)
    invoice = make_open_invoice(postpaid, amount_due=Decimal("310.50"), due_at=DUE)
    run(autopay_due_task, DUE)
    first = Payment.objects.get(dunning_attempt=0)
    assert (first.status, first.failure_code) == (PaymentStatus.FAILED, "card_declined")
    assert fake_stripe.objects[first.provider_payment_id]["amount"] == 31050
    good = stripe_card(postpaid)
    services.payment_method_set_default(method=good)
    run(dunning_due_task, DUE + timedelta(days=1))
    invoice.refresh_from_db()
    assert invoice.status == "paid" and DunningCase.objects.get().status == DunningStatus.RECOVERED
    # The notice of the decline, and the receipt of the payment that recovered it.
    assert len([m for m in mailoutbox if "receipt" not in m.subject]) == 1
    assert len([m for m in mailoutbox if "receipt" in m.subject]) == 1


def test_an_invoice_settled_outside_payments_ends_its_dunning_at_the_next_retry(postpaid, run):
    from invoices.services import credit_note_create

    PaymentMethodFactory(organization=postpaid, provider_method_id="sbx_pm_declining_1")
    invoice = make_open_invoice(postpaid, amount_due=Decimal("40.00"), due_at=DUE)
    run(autopay_due_task, DUE)
    credit_note_create(invoice=invoice, reason="service credit for the outage")
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert run(dunning_due_task, DUE + timedelta(days=1)) == 1
    assert DunningCase.objects.get().status == DunningStatus.RECOVERED
    assert Payment.objects.count() == 1
    assert run(dunning_due_task, DUE + timedelta(days=3)) == 0
