"""Reconciliation repairs what missed webhooks left behind, and changes nothing twice."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from payments import services
from payments.models import Payment, PaymentStatus, Provider, Purpose, WebhookEvent
from payments.tests.conftest import return_urls
from payments.tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db


def test_a_checkout_whose_webhooks_never_came_is_credited_once_by_reconciliation(org, fake_stripe, balance,
                                                                                  capsys):
    payment = services.payment_start_checkout(organization=org, purpose=Purpose.TOPUP, provider=Provider.STRIPE,
                                              amount=Decimal("60.00"), urls=return_urls)
    fake_stripe.complete_checkout(payment.provider_checkout_id)  # Stripe sent webhooks; none arrived
    call_command("reconcile_payments")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert balance(org) == Decimal("60.00")
    assert "events fetched=2 processed=2" in capsys.readouterr().out
    call_command("reconcile_payments", hours=1)
    assert balance(org) == Decimal("60.00")
    assert WebhookEvent.objects.count() == 2


def test_an_open_payment_is_synced_with_its_payment_intent(org, fake_stripe, balance):
    payment = services.payment_start_checkout(organization=org, purpose=Purpose.TOPUP, provider=Provider.STRIPE,
                                              amount=Decimal("60.00"), urls=return_urls)
    fake_stripe.complete_checkout(payment.provider_checkout_id)
    fake_stripe.events.clear()  # older than the events Stripe still lists
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        call_command("reconcile_payments")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and balance(org) == Decimal("60.00")


def test_a_checkout_nobody_finished_is_canceled_after_a_day(org):
    payment = PaymentFactory(organization=org, provider=Provider.SANDBOX)
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        call_command("reconcile_payments")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELED


def test_a_failed_event_is_processed_again(org, fake_stripe, deliver_stripe, balance, monkeypatch):
    from payments import webhooks

    payment = services.payment_start_checkout(organization=org, purpose=Purpose.TOPUP, provider=Provider.STRIPE,
                                              amount=Decimal("60.00"), urls=return_urls)
    events = fake_stripe.complete_checkout(payment.provider_checkout_id)
    completed = events[-1]
    broken = dict(webhooks.HANDLERS["stripe"])
    monkeypatch.setitem(webhooks.HANDLERS, "stripe", {**broken, "checkout.session.completed": _boom})
    assert deliver_stripe(completed).status_code == 500
    stored = WebhookEvent.objects.get()
    assert stored.status == "failed" and "database went away" in stored.last_error
    assert balance(org) == Decimal("0")
    monkeypatch.setitem(webhooks.HANDLERS, "stripe", broken)
    fake_stripe.events.clear()
    call_command("reconcile_payments")
    stored.refresh_from_db()
    assert stored.status == "processed" and balance(org) == Decimal("60.00")
    assert Payment.objects.get().status == PaymentStatus.SUCCEEDED


def _boom(event):
    raise RuntimeError("database went away")


def test_an_autopay_charge_whose_answer_was_lost_is_sent_again_with_its_key(org, fake_stripe, stripe_card, settings):
    from payments.dunning import autopay_charge
    from payments.gateways.base import GatewayUnavailable
    from payments.tests.factories import make_open_invoice

    org.billing_mode = "postpaid"
    org.save()
    stripe_card(org)
    invoice = make_open_invoice(org, amount_due=Decimal("75.00"))
    settings.PAYMENTS_PROVIDER_TIMEOUT = 0.5
    fake_stripe.stall_next("/v1/payment_intents", 1.5)
    with pytest.raises(GatewayUnavailable):
        autopay_charge(invoice_id=invoice.pk)
    assert Payment.objects.get().status == PaymentStatus.PENDING
    fake_stripe.events.clear()  # the webhooks were lost too
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        call_command("reconcile_payments")
    invoice.refresh_from_db()
    assert invoice.status == "paid" and Payment.objects.get().status == PaymentStatus.SUCCEEDED
    assert len([o for o in fake_stripe.objects.values() if o["object"] == "payment_intent"]) == 1


def test_a_lost_charge_older_than_the_key_lifetime_is_left_for_staff(org, capsys):
    from payments.tests.factories import PaymentMethodFactory

    payment = PaymentFactory(organization=org, flow="off_session", status=PaymentStatus.PENDING,
                             payment_method=PaymentMethodFactory(organization=org))
    with time_machine.travel(timezone.now() + timedelta(hours=30)):
        call_command("reconcile_payments")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert "outcome unknown past the idempotency key's lifetime" in capsys.readouterr().err
