"""Stripe webhooks signed with Stripe's real scheme, against the fake Stripe API."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from payments import services
from payments.models import (
    Payment,
    PaymentMethod,
    PaymentStatus,
    Provider,
    ProviderCustomer,
    Purpose,
    Refund,
    RefundStatus,
    WebhookEvent,
    WebhookStatus,
)
from payments.tests.conftest import return_urls, stripe_body, stripe_signature

pytestmark = pytest.mark.django_db



def _topup(org, amount="50.00") -> Payment:
    return services.payment_start_checkout(organization=org, purpose=Purpose.TOPUP, provider=Provider.STRIPE,
                                           amount=Decimal(amount), urls=return_urls)


def _event(events, type_):
    return next(e for e in events if e["type"] == type_)


def test_checkout_session_carries_the_amount_in_minor_units_and_our_key(org, fake_stripe):
    payment = _topup(org, "50.00")
    session = fake_stripe.objects[payment.provider_checkout_id]
    assert session["amount_total"] == 5000 and session["currency"] == "usd"
    assert session["metadata"]["payment_id"] == str(payment.pk)
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert payment.checkout_url == session["url"]


def test_a_valid_delivery_credits_the_top_up_once(org, fake_stripe, deliver_stripe, balance):
    payment = _topup(org)
    events = fake_stripe.complete_checkout(payment.provider_checkout_id)
    for event in events:
        assert deliver_stripe(event).status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.provider_payment_id.startswith("pi_")
    assert balance(org) == Decimal("50.00")
    assert WebhookEvent.objects.get(event_id=_event(events, "payment_intent.succeeded")["id"]).status == (
        WebhookStatus.PROCESSED)
    assert WebhookEvent.objects.get(event_id=_event(events, "charge.succeeded")["id"]).status == WebhookStatus.IGNORED


@pytest.mark.parametrize("tamper", ["tampered body", "stale timestamp", "wrong secret", "re-serialized JSON",
                                    "no signature"])
def test_an_unauthentic_delivery_is_refused_and_changes_nothing(tamper, org, fake_stripe, deliver_stripe, balance):
    payment = _topup(org)
    event = _event(fake_stripe.complete_checkout(payment.provider_checkout_id), "checkout.session.completed")
    body = stripe_body(event)
    if tamper == "tampered body":
        response = deliver_stripe(event, body=body.replace(b'"amount_total":5000', b'"amount_total":500000'),
                                  signature=stripe_signature(body))
    elif tamper == "stale timestamp":
        response = deliver_stripe(event, signature=stripe_signature(body, timestamp=int(time.time()) - 301))
    elif tamper == "wrong secret":
        response = deliver_stripe(event, signature=stripe_signature(body, secret="whsec_someone_else"))
    elif tamper == "re-serialized JSON":
        # Same content, other bytes (as a framework that parses and re-dumps would send).
        response = deliver_stripe(event, body=json.dumps(event, indent=2).encode(), signature=stripe_signature(body))
    else:
        response = deliver_stripe(event, signature="")
    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert balance(org) == Decimal("0")


def test_a_duplicate_delivery_is_stored_once_and_credits_once(org, fake_stripe, deliver_stripe, balance):
    payment = _topup(org)
    event = _event(fake_stripe.complete_checkout(payment.provider_checkout_id), "checkout.session.completed")
    for _ in range(3):
        assert deliver_stripe(event).status_code == 200
    stored = WebhookEvent.objects.get()
    assert (stored.deliveries, stored.attempts, stored.status) == (3, 1, WebhookStatus.PROCESSED)
    assert balance(org) == Decimal("50.00")


def test_the_same_success_told_by_three_events_credits_once(org, fake_stripe, deliver_stripe, balance):
    payment = _topup(org)
    events = fake_stripe.complete_checkout(payment.provider_checkout_id)
    for event in reversed(events):
        deliver_stripe(event)
    assert balance(org) == Decimal("50.00")
    assert Payment.objects.get().status == PaymentStatus.SUCCEEDED


def test_a_refund_arriving_before_the_success_it_follows_ends_refunded_with_both_entries_once(
        org, fake_stripe, deliver_stripe, balance):
    from credits.models import LedgerEntry

    payment = _topup(org, "80.00")
    events = fake_stripe.complete_checkout(payment.provider_checkout_id)
    pi = fake_stripe.objects[_event(events, "payment_intent.succeeded")["data"]["object"]["id"]]
    fake_stripe._create_refund({"payment_intent": pi["id"], "amount": "3000"})  # refunded in Stripe's dashboard
    refunded = _event(fake_stripe.events, "charge.refunded")

    assert deliver_stripe(refunded).status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.amount_refunded == Decimal("30.00")
    for event in [*events, refunded]:
        deliver_stripe(event)
    assert balance(org) == Decimal("50.00")
    kinds = sorted(LedgerEntry.objects.filter(organization=org).values_list("kind", "amount"))
    assert kinds == [("refund", Decimal("-30.000000000000")), ("topup", Decimal("80.000000000000"))]
    refund = Refund.objects.get()
    assert (refund.status, refund.reason) == (RefundStatus.SUCCEEDED, "Refunded at the provider")


def test_a_refund_of_an_invoice_payment_in_stripes_dashboard_opens_the_invoice_again_once(
        org, fake_stripe, deliver_stripe, balance):
    from payments.tests.factories import make_open_invoice

    invoice = make_open_invoice(org, amount_due=Decimal("120.00"))
    payment = services.payment_start_checkout(organization=org, purpose=Purpose.INVOICE, provider=Provider.STRIPE,
                                              amount=Decimal("120.00"), invoice=invoice, urls=return_urls)
    events = fake_stripe.complete_checkout(payment.provider_checkout_id)
    for event in events:
        deliver_stripe(event)
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    paid_balance = balance(org)
    pi = fake_stripe.objects[_event(events, "payment_intent.succeeded")["data"]["object"]["id"]]
    fake_stripe._create_refund({"payment_intent": pi["id"], "amount": "4500"})
    refunded = _event(fake_stripe.events, "charge.refunded")
    for _ in range(3):  # delivered three times
        assert deliver_stripe(refunded).status_code == 200
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == (
        "open", Decimal("75.00"), Decimal("45.00"))
    assert balance(org) == paid_balance - Decimal("45.00")
    assert invoice.payment_reversals.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_deliveries_process_once(org, fake_stripe, balance):
    """Six deliveries of one event at once, each on its own connection. Without the event
    row's lock every one of them would run the handler (attempts == 6)."""
    payment = _topup(org)
    event = _event(fake_stripe.complete_checkout(payment.provider_checkout_id), "checkout.session.completed")
    body = stripe_body(event)
    barrier = threading.Barrier(6)
    statuses = []

    def deliver():
        try:
            barrier.wait()
            response = Client().post("/payments/webhooks/stripe", data=body, content_type="application/json",
                                     HTTP_STRIPE_SIGNATURE=stripe_signature(body))
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 6
    stored = WebhookEvent.objects.get()
    assert (stored.deliveries, stored.attempts) == (6, 1)
    assert balance(org) == Decimal("50.00")


def test_a_failed_payment_intent_marks_an_off_session_payment_failed(org, fake_stripe, deliver_stripe, stripe_card):
    method = stripe_card(org, declines=True)
    payment = services.payment_create(organization=org, purpose=Purpose.TOPUP, provider=Provider.STRIPE,
                                      flow="off_session", amount=Decimal("20.00"), payment_method=method)
    services.payment_charge_saved_method(payment_id=payment.pk)
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "card_declined")
    failed = _event(fake_stripe.events, "payment_intent.payment_failed")
    assert deliver_stripe(failed).status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED and payment.provider_payment_id == failed["data"]["object"]["id"]


def test_setup_through_hosted_checkout_saves_the_card_once_as_default(org, fake_stripe, deliver_stripe):
    from payments.gateways.stripe_gateway import StripeGateway

    started = StripeGateway().start_setup(org, success_url="https://x/ok", cancel_url="https://x/no")
    events = fake_stripe.complete_checkout(started.checkout_id)
    assert [e["type"] for e in events] == ["setup_intent.succeeded", "checkout.session.completed"]
    for event in events + events:
        assert deliver_stripe(event).status_code == 200
    method = PaymentMethod.objects.get()
    assert (method.organization, method.brand, method.last4, method.is_default) == (org, "visa", "4242", True)
    assert method.provider_customer_id == ProviderCustomer.objects.get(organization=org).customer_id


def test_a_card_detached_at_stripe_is_removed_and_the_next_becomes_default(org, fake_stripe, deliver_stripe,
                                                                           stripe_card):
    first = stripe_card(org)
    second = stripe_card(org)
    fake_stripe.objects[first.provider_method_id]["customer"] = None
    detached = fake_stripe._event("payment_method.detached", fake_stripe.objects[first.provider_method_id])
    assert deliver_stripe(detached).status_code == 200
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.detached_at is not None and not first.is_default
    assert second.is_default


def test_a_dispute_marks_the_payment_and_tells_staff(org, fake_stripe, deliver_stripe, mailoutbox, settings,
                                                     django_capture_on_commit_callbacks):
    settings.ADMINS = [("Billing", "billing-staff@cloudbill.example")]
    payment = _topup(org)
    events = fake_stripe.complete_checkout(payment.provider_checkout_id)
    for event in events:
        deliver_stripe(event)
    charge_id = _event(events, "charge.succeeded")["data"]["object"]["id"]
    with_dispute = fake_stripe.dispute(charge_id)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver_stripe(with_dispute).status_code == 200
        assert deliver_stripe(with_dispute).status_code == 200
    payment.refresh_from_db()
    assert payment.disputed_at is not None and payment.dispute_reason == "fraudulent"
    assert [m.subject for m in mailoutbox] == [f"[Django] Dispute on payment {payment.pk}"]


@pytest.mark.parametrize("purpose", ["topup", "invoice"])
def test_a_lost_dispute_takes_the_money_back_once_and_a_won_one_changes_nothing(
        purpose, org, fake_stripe, deliver_stripe, balance):
    from accounts.models import AuditLog
    from payments.tests.factories import make_open_invoice

    invoice = make_open_invoice(org, amount_due=Decimal("50.00")) if purpose == "invoice" else None
    payment = services.payment_start_checkout(organization=org, purpose=purpose, provider=Provider.STRIPE,
                                              amount=Decimal("50.00"), invoice=invoice, urls=return_urls)
    events = fake_stripe.complete_checkout(payment.provider_checkout_id)
    for event in events:
        deliver_stripe(event)
    paid_balance = balance(org)
    charge_id = _event(events, "charge.succeeded")["data"]["object"]["id"]
    dispute = fake_stripe.dispute(charge_id)["data"]["object"]
    won = fake_stripe.close_dispute(dispute["id"], won=True)
    assert deliver_stripe(won).status_code == 200
    assert balance(org) == paid_balance and not Refund.objects.exists()
    assert AuditLog.objects.filter(action="payment.dispute_closed").count() == 1

    lost = fake_stripe.close_dispute(dispute["id"], won=False)  # (a second case on the same charge, lost)
    for _ in range(2):
        assert deliver_stripe(lost).status_code == 200
    payment.refresh_from_db()
    refund = Refund.objects.get()
    assert (refund.amount, refund.reason, refund.provider_refund_id) == (
        Decimal("50.00"), "Dispute lost (fraudulent)", f"dispute:{dispute['id']}")
    assert payment.status == PaymentStatus.REFUNDED and payment.disputed_at is not None
    assert balance(org) == paid_balance - Decimal("50.00")
    if invoice is not None:
        invoice.refresh_from_db()
        assert (invoice.status, invoice.amount_paid) == ("open", Decimal("0.00"))


def test_an_event_for_a_payment_that_is_not_ours_is_recorded_and_ignored(fake_stripe, deliver_stripe):
    pi = fake_stripe._new_payment_intent(amount=100, currency="usd", customer=None, metadata={})
    event = fake_stripe._event("payment_intent.succeeded", pi)
    assert deliver_stripe(event).status_code == 200
    assert WebhookEvent.objects.get().status == WebhookStatus.PROCESSED
    assert Payment.objects.count() == 0


def test_a_webhook_without_a_configured_secret_is_not_served(settings, deliver_stripe):
    settings.STRIPE_WEBHOOK_SECRET = ""
    assert deliver_stripe({"id": "evt_x", "type": "x"}).status_code == 404


@pytest.mark.parametrize("event", [
    {"type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}},
    {"id": "evt_1", "data": {"object": {"id": "pi_1"}}},
    {"id": "evt_1", "type": "payment_intent.succeeded"},
    {"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": "pi_1"}},
    {"id": 7, "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}},
    ["not", "an", "object"],
], ids=["no id", "no type", "no data", "object not an object", "id not a string", "not an object"])
def test_a_signed_event_without_id_type_or_data_is_a_400_not_a_500(fake_stripe, deliver_stripe, event):
    response = deliver_stripe(event)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_event"
    assert WebhookEvent.objects.count() == 0


def test_a_signed_refund_with_a_non_integer_amount_is_a_400_recorded_as_failed(org, fake_stripe, deliver_stripe):
    payment = _topup(org)
    charge = {"id": "ch_x", "object": "charge", "payment_intent": payment.provider_payment_id or "pi_x",
              "amount": "lots", "amount_refunded": "lots", "currency": "usd", "refunded": True, "paid": True,
              "metadata": {"payment_id": str(payment.pk)}}
    response = deliver_stripe({"id": "evt_bad_amount", "type": "charge.refunded", "data": {"object": charge}})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "malformed_event"
    event = WebhookEvent.objects.get(event_id="evt_bad_amount")
    assert event.status == WebhookStatus.FAILED and "charge.refunded" in event.last_error


@pytest.mark.parametrize("amount", [1050.5, "1050", True], ids=["float", "string", "bool"])
def test_a_signed_refund_whose_amount_is_not_a_strict_integer_is_a_400(org, fake_stripe, deliver_stripe, amount):
    payment = _topup(org)
    charge = {"id": "ch_y", "object": "charge", "payment_intent": payment.provider_payment_id or "pi_y",
              "amount": amount, "amount_refunded": amount, "currency": "usd", "refunded": True, "paid": True,
              "metadata": {"payment_id": str(payment.pk)}}
    response = deliver_stripe({"id": "evt_strict", "type": "charge.refunded", "data": {"object": charge}})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "malformed_event"


def test_a_signed_event_nested_too_deep_is_a_400_not_a_500(fake_stripe, deliver_stripe):
    from payments.tests.conftest import stripe_signature

    body = ('{"id": "evt_deep", "type": "x", "data": {"object": {"x": ' + "[" * 5000 + "]" * 5000 + "}}}").encode()
    response = deliver_stripe({}, body=body, signature=stripe_signature(body))
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "malformed_event"


def test_a_bad_signature_is_a_400_in_the_error_format(fake_stripe, deliver_stripe):
    response = deliver_stripe({"id": "evt_x", "type": "x", "data": {"object": {}}}, signature="t=1,v1=bad")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"


@pytest.mark.parametrize("clears", [True, False], ids=["clears", "fails"])
def test_a_delayed_payment_credits_only_when_it_clears(clears, org, fake_stripe, deliver_stripe, balance):
    """A bank debit in Checkout completes the page unpaid; Stripe tells the outcome days
    later with checkout.session.async_payment_succeeded or _failed (issue 13: async
    payments). Before, the failure event was ignored and the payment stayed processing."""
    payment = _topup(org, "40.00")
    for event in fake_stripe.complete_checkout(payment.provider_checkout_id, async_payment=True):
        assert deliver_stripe(event).status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PROCESSING and balance(org) == Decimal("0")
    outcome = fake_stripe.settle_async(payment.provider_checkout_id, succeeded=clears)
    session_event = outcome[-1]
    assert session_event["type"] == f"checkout.session.async_payment_{'succeeded' if clears else 'failed'}"
    assert deliver_stripe(session_event).status_code == 200  # the session's news alone decides
    payment.refresh_from_db()
    assert payment.status == (PaymentStatus.SUCCEEDED if clears else PaymentStatus.FAILED)
    assert WebhookEvent.objects.get(event_id=session_event["id"]).status == WebhookStatus.PROCESSED
    for event in outcome:
        deliver_stripe(event)
    assert balance(org) == (Decimal("40.00") if clears else Decimal("0"))


def test_an_expired_checkout_is_canceled_by_its_event(org, fake_stripe, deliver_stripe, balance):
    payment = _topup(org)
    assert deliver_stripe(fake_stripe.expire_checkout(payment.provider_checkout_id)).status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELED


@pytest.mark.parametrize("closed_as, reversed_", [("lost", True), ("won", False), ("warning_closed", False),
                                                  ("prevented", False)])
def test_every_stripe_dispute_status_moves_the_money_as_stripe_does(closed_as, reversed_, org, fake_stripe,
                                                                   deliver_stripe, balance):
    """Disputes in every status (issue 13): an inquiry (warning_needs_response) closed
    without a chargeback, or one Stripe prevented, takes nothing; the events on the way
    (updated, funds withdrawn and reinstated) only mark the payment. Before, those events
    were not handled at all."""
    payment = _topup(org, "30.00")
    events = fake_stripe.complete_checkout(payment.provider_checkout_id)
    for event in events:
        deliver_stripe(event)
    paid = balance(org)
    charge_id = _event(events, "charge.succeeded")["data"]["object"]["id"]
    dispute = fake_stripe.dispute(charge_id)["data"]["object"]
    for status, kind in [("under_review", "charge.dispute.updated"), ("under_review", "charge.dispute.funds_withdrawn"),
                         ("won", "charge.dispute.funds_reinstated")]:
        if kind.endswith("reinstated") and closed_as != "won":
            continue
        assert deliver_stripe(fake_stripe.update_dispute(dispute["id"], status, event=kind)).status_code == 200
        assert WebhookEvent.objects.get(event_type=kind).status == WebhookStatus.PROCESSED
    closed = fake_stripe.close_dispute(dispute["id"], status=closed_as)
    for _ in range(2):
        assert deliver_stripe(closed).status_code == 200
    assert balance(org) == (paid - Decimal("30.00") if reversed_ else paid)
    assert Refund.objects.filter(payment=payment).exists() is reversed_
