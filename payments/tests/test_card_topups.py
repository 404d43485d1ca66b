"""Credits' top-up handler: the saved card is charged off-session, once per top-up,
even when the provider's answer is lost."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.models import OutboxMessage
from credits import services as credits
from credits.models import LedgerEntry, TopUp
from credits.tasks import credits_topup_dispatch_task
from payments.card_topups import charge_topup
from payments.models import Payment, PaymentStatus, Provider
from payments.tests.factories import PaymentMethodFactory

pytestmark = pytest.mark.django_db


def _auto_topup(org, amount="50.00") -> TopUp:
    topup = TopUp.objects.create(organization=org, source="auto", amount=Decimal(amount), currency=org.currency)
    return credits.topup_begin_attempt(topup_id=topup.pk)


def test_an_auto_top_up_charges_the_default_stripe_card_off_session(org, fake_stripe, stripe_card, balance,
                                                                    django_capture_on_commit_callbacks):
    card = stripe_card(org)
    credits.auto_topup_configure(organization=org, enabled=True, threshold=Decimal("20"), amount=Decimal("50"))
    credits.credit_adjust(organization=org, amount=Decimal("30"), reason="opening credit")
    with django_capture_on_commit_callbacks(execute=True):
        credits.ledger_post(organization=org, amount=Decimal("-15"), kind="usage", reason="usage")
    topup = TopUp.objects.get()
    payment = Payment.objects.get()
    assert (topup.status, payment.status, payment.payment_method) == ("succeeded", PaymentStatus.SUCCEEDED, card)
    assert payment.credits_topup_id == topup.pk and payment.flow == "off_session"
    pi = fake_stripe.objects[payment.provider_payment_id]
    assert (pi["amount"], pi["currency"], pi["payment_method"]) == (5000, "usd", card.provider_method_id)
    assert balance(org) == Decimal("65.00")
    assert LedgerEntry.objects.filter(kind="topup").get().reference == f"topup:{topup.pk}"


def test_a_timeout_after_stripe_charged_then_a_retry_charges_once(org, fake_stripe, stripe_card, balance, settings):
    stripe_card(org)
    settings.PAYMENTS_PROVIDER_TIMEOUT = 0.5
    topup = _auto_topup(org)
    fake_stripe.stall_next("/v1/payment_intents", 1.5)  # Stripe charges, its answer never arrives
    charge_topup(topup.pk)  # not a failed top-up: payments charges the same payment again later
    assert OutboxMessage.objects.filter(task="payments.payment_charge").count() == 1
    topup.refresh_from_db()
    assert topup.status == "pending"
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.PENDING
    assert [o["status"] for o in fake_stripe.objects.values() if o["object"] == "payment_intent"] == ["succeeded"]
    assert balance(org) == Decimal("0")

    charge_topup(topup.pk)  # credits retries: the same payment, the same Idempotency-Key

    assert fake_stripe.count("POST", "/v1/payment_intents") == 2
    assert len([o for o in fake_stripe.objects.values() if o["object"] == "payment_intent"]) == 1
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and Payment.objects.count() == 1
    assert balance(org) == Decimal("50.00")
    charge_topup(topup.pk)
    assert balance(org) == Decimal("50.00")


def test_a_declined_card_reports_one_failure_to_credits(org, fake_stripe, stripe_card,
                                                        django_capture_on_commit_callbacks):
    stripe_card(org, declines=True)
    topup = _auto_topup(org)
    with django_capture_on_commit_callbacks(execute=True):
        charge_topup(topup.pk)
    topup.refresh_from_db()
    assert topup.status == "failed" and "insufficient funds" in topup.last_error
    assert Payment.objects.get().failure_code == "card_declined"


def test_with_stripe_configured_and_no_saved_card_the_top_up_fails_without_retry(org, fake_stripe,
                                                                                django_capture_on_commit_callbacks):
    topup = _auto_topup(org)
    charge_topup(topup.pk)
    topup.refresh_from_db()
    assert topup.status == "abandoned" and "No saved card" in topup.last_error
    assert Payment.objects.count() == 0


def test_in_the_sandbox_a_requested_top_up_is_credited_through_a_sandbox_payment(
        org, owner, balance, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        topup = credits.topup_request(organization=org, amount=Decimal("75.00"), actor=owner)
    payment = Payment.objects.get()
    assert (payment.provider, payment.status, payment.credits_topup_id) == (
        Provider.SANDBOX, PaymentStatus.SUCCEEDED, topup.pk)
    credits_topup_dispatch_task(topup.pk)
    assert balance(org) == Decimal("75.00") and Payment.objects.count() == 1


def test_a_declining_sandbox_card_fails_the_auto_top_up(org, django_capture_on_commit_callbacks):
    PaymentMethodFactory(organization=org, provider_method_id="sbx_pm_declining_x", last4="0341")
    topup = _auto_topup(org)
    with django_capture_on_commit_callbacks(execute=True):
        charge_topup(topup.pk)
    topup.refresh_from_db()
    assert topup.status == "failed" and "sandbox card declined" in topup.last_error


def test_an_off_session_charge_refuses_redirects_as_stripe_requires(org, fake_stripe, stripe_card, balance,
                                                                    django_capture_on_commit_callbacks):
    """Under today's API defaults a confirmed PaymentIntent has automatic payment methods
    on, and Stripe asks for a return_url unless redirects are refused: without
    `automatic_payment_methods[allow_redirects]=never` every auto top-up and autopay
    failed (issue 13, finding 4). The fake answers as Stripe does."""
    import stripe

    stripe_card(org)
    client = stripe.StripeClient(fake_stripe.api_key, base_addresses={"api": fake_stripe.url})
    pm = next(o["id"] for o in fake_stripe.objects.values() if o["object"] == "payment_method")
    with pytest.raises(stripe.InvalidRequestError, match="return_url"):
        client.v1.payment_intents.create({"amount": 5000, "currency": "usd", "payment_method": pm,
                                          "off_session": True, "confirm": True})
    topup = _auto_topup(org)
    with django_capture_on_commit_callbacks(execute=True):
        charge_topup(topup.pk)
    topup.refresh_from_db()
    assert topup.status == "succeeded" and balance(org) == Decimal("50.00")
