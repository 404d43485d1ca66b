"""Provider errors by kind (issue 13, findings 4 and 5): a decline is a decline; a charge
the bank holds for authentication waits for the customer; "come back later" (409 a
request with this key in progress, 429, 5xx) is retried with the same key; a request the
provider refuses as malformed is our bug, for staff, never a decline.

Each test drives the official SDKs against the fakes, which answer as Stripe and PayPal
do: a second request with a key whose first request is still running is refused 409
(Stripe `idempotency_key_in_use`, PayPal `PREVIOUS_REQUEST_IN_PROGRESS`)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from credits.models import CreditEvent, TopUp
from credits.tasks import credits_topup_dispatch_task
from payments import dunning, services
from payments.gateways.base import GatewayUnavailable
from payments.gateways.paypal_gateway import PayPalGateway
from payments.gateways.stripe_gateway import StripeGateway
from payments.models import DunningCase, Flow, Payment, PaymentStatus, Provider, Purpose, RefundStatus
from payments.tasks import paypal_capture_task
from payments.tests.conftest import return_urls, wait_for
from payments.tests.factories import make_open_invoice

pytestmark = pytest.mark.django_db
DUE = datetime(2028, 3, 1, 9, 0, tzinfo=UTC)
PI = "/v1/payment_intents"


@pytest.fixture
def postpaid(org):
    org.billing_mode = "postpaid"
    org.billing_email = "ap@customer.example"
    org.save()
    return org


def _auto_topup(org, amount="50.00") -> TopUp:
    return TopUp.objects.create(organization=org, source="auto", amount=Decimal(amount), currency=org.currency)


def _topup_payment(org, card, topup) -> Payment:
    return services.payment_create(organization=org, purpose=Purpose.TOPUP, provider=Provider.STRIPE,
                                   flow=Flow.OFF_SESSION, amount=topup.amount, payment_method=card,
                                   credits_topup_id=topup.pk)


def _authenticating_card(fake_stripe, org):
    """A card like Stripe's 4000002500003155: off-session charges need 3-D Secure."""
    customer = StripeGateway().customer_id(org)
    pm = fake_stripe.make_card(customer=customer, requires_authentication=True, last4="3155")
    return services.payment_method_save(organization=org, provider=Provider.STRIPE,
                                        saved=StripeGateway().saved_method(pm["id"]))


def _failed_topup_events(org) -> int:
    return CreditEvent.objects.filter(organization=org, kind="topup_failed").count()


# --- retry later ---------------------------------------------------------------------


def test_a_charge_while_the_first_with_its_key_is_in_progress_is_retried_with_the_same_key_and_charges_once(
        org, fake_stripe, stripe_card, balance):
    card = stripe_card(org)
    topup = _auto_topup(org)
    payment = _topup_payment(org, card, topup)
    loaded = Payment.objects.select_related("payment_method", "organization").get(pk=payment.pk)
    fake_stripe.hold_next(PI, 1.0)  # a first worker's charge, still running at Stripe
    first = threading.Thread(target=StripeGateway().charge_saved_method, args=(loaded,))
    first.start()
    assert wait_for(lambda: f"payment:{payment.pk}" in fake_stripe.in_flight)

    credits_topup_dispatch_task(topup.pk)  # a redelivery: Stripe answers 409 idempotency_key_in_use
    first.join()

    topup.refresh_from_db()
    assert topup.status == "pending" and _failed_topup_events(org) == 0  # not a failed top-up
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    from payments.tasks import payment_charge_task

    payment_charge_task.apply(args=(payment.pk,), throw=False)  # payments' retry, later
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert fake_stripe.keys_sent("POST", PI) == [f"payment:{payment.pk}"] * 3
    assert len([o for o in fake_stripe.objects.values() if o["object"] == "payment_intent"]) == 1
    topup.refresh_from_db()
    assert topup.status == "succeeded" and balance(org) == Decimal("50.00")


def test_a_rate_limited_charge_is_retried_with_backoff_on_the_same_key(org, fake_stripe, stripe_card, balance):
    stripe_card(org)
    topup = _auto_topup(org)
    fake_stripe.fail_next(PI, 429)
    credits_topup_dispatch_task(topup.pk)
    topup.refresh_from_db()
    assert topup.status == "pending" and topup.attempts == 1 and _failed_topup_events(org) == 0
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.PENDING
    from payments.tasks import payment_charge_task

    # The task the charge was handed to retries GatewayUnavailable with exponential backoff
    # (30 s doubling up to 30 min, 8 times: about 3 hours, inside Stripe's 24 hours)...
    assert GatewayUnavailable in payment_charge_task.autoretry_for
    assert (payment_charge_task.retry_backoff, payment_charge_task.retry_backoff_max) == (30, 1800)
    # ...and each retry is the same operation: Stripe rate-limits once more, then charges.
    fake_stripe.fail_next(PI, 429)
    payment_charge_task.apply(args=(payment.pk,), throw=False)
    assert fake_stripe.keys_sent("POST", PI) == [f"payment:{payment.pk}"] * 3
    payment.refresh_from_db()
    topup.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and topup.status == "succeeded"
    assert balance(org) == Decimal("50.00")


def test_a_stripe_server_error_on_autopay_is_retried_and_opens_no_dunning_case(postpaid, fake_stripe, stripe_card):
    stripe_card(postpaid)
    invoice = make_open_invoice(postpaid, amount_due=Decimal("80.00"), due_at=DUE)
    fake_stripe.fail_next(PI, 500)
    with pytest.raises(GatewayUnavailable):  # autopay_invoice_task retries it (RETRY)
        dunning.autopay_charge(invoice_id=invoice.pk)
    assert Payment.objects.get().status == PaymentStatus.PENDING and not DunningCase.objects.exists()


def test_paypal_previous_request_in_progress_is_retried_not_a_decline(org, fake_paypal, balance):
    payment = services.payment_start_checkout(organization=org, purpose=Purpose.TOPUP, provider=Provider.PAYPAL,
                                              amount=Decimal("50.00"), urls=return_urls)
    fake_paypal.approve(payment.provider_checkout_id)
    capture = f"/v2/checkout/orders/{payment.provider_checkout_id}/capture"
    fake_paypal.hold_next(capture, 1.0)
    first = threading.Thread(target=PayPalGateway().capture, args=(payment,))
    first.start()
    assert wait_for(lambda: f"payment:{payment.pk}:capture" in fake_paypal.in_flight)

    with pytest.raises(GatewayUnavailable):  # 409 PREVIOUS_REQUEST_IN_PROGRESS: the task retries
        paypal_capture_task(payment.pk)
    first.join()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REQUIRES_ACTION  # not failed: nothing was declined
    paypal_capture_task(payment.pk)  # the retry, with the same PayPal-Request-Id
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert fake_paypal.keys_sent("POST", capture) == [f"payment:{payment.pk}:capture"] * 3
    assert len(fake_paypal.captures) == 1 and balance(org) == Decimal("50.00")


def test_a_paypal_refund_answered_409_stays_pending_and_is_sent_again(org, fake_paypal, staff_user,
                                                                      django_capture_on_commit_callbacks):
    payment = services.payment_start_checkout(organization=org, purpose=Purpose.TOPUP, provider=Provider.PAYPAL,
                                              amount=Decimal("50.00"), urls=return_urls)
    fake_paypal.approve(payment.provider_checkout_id)
    services.payment_apply_snapshot(payment_id=payment.pk, snapshot=PayPalGateway().capture(payment))
    payment.refresh_from_db()
    refund = services.refund_request(payment=payment, amount=Decimal("20.00"), reason="asked", actor=staff_user)
    fake_paypal.fail_next(f"/v2/payments/captures/{payment.provider_payment_id}/refund", 409)
    with pytest.raises(GatewayUnavailable):
        services.refund_submit(refund_id=refund.pk)
    refund.refresh_from_db()
    assert refund.status == RefundStatus.PENDING and fake_paypal.refunds == {}
    services.refund_submit(refund_id=refund.pk)
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED and len(fake_paypal.refunds) == 1


# --- declined ------------------------------------------------------------------------------


def test_paypal_instrument_declined_on_capture_is_a_decline(org, fake_paypal):
    payment = services.payment_start_checkout(organization=org, purpose=Purpose.TOPUP, provider=Provider.PAYPAL,
                                              amount=Decimal("50.00"), urls=return_urls)
    fake_paypal.approve(payment.provider_checkout_id, funding="declines")
    paypal_capture_task(payment.pk)
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "instrument_declined")
    assert fake_paypal.captures == {}


def test_a_pending_paypal_capture_is_processing_until_it_completes_then_settles_once(
        org, fake_paypal, deliver_paypal, balance):
    payment = services.payment_start_checkout(organization=org, purpose=Purpose.TOPUP, provider=Provider.PAYPAL,
                                              amount=Decimal("50.00"), urls=return_urls)
    fake_paypal.approve(payment.provider_checkout_id, funding="pending")
    paypal_capture_task(payment.pk)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PROCESSING and balance(org) == Decimal("0")
    completed = fake_paypal.complete_capture(payment.provider_payment_id)
    assert deliver_paypal(completed).status_code == 200
    assert deliver_paypal(completed).status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and balance(org) == Decimal("50.00")


# --- our bug -------------------------------------------------------------------------------


def test_an_idempotency_error_is_our_bug_not_a_decline_and_sends_no_one_into_dunning(
        postpaid, fake_stripe, stripe_card, settings, mailoutbox, caplog, django_capture_on_commit_callbacks):
    from payments.gateways.base import GatewayIntegrationError

    settings.ADMINS = [("Ops", "ops@cloudbill.example")]
    stripe_card(postpaid)
    invoice = make_open_invoice(postpaid, amount_due=Decimal("80.00"), due_at=DUE)
    fake_stripe.fail_next(PI, 400, {"error": {
        "type": "idempotency_error", "message": "Keys for idempotent requests can only be used with the same "
        "parameters they were first used with. Try using a key other than 'payment:1' if you meant to execute "
        "a different request."}})
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(GatewayIntegrationError) as raised:
        dunning.autopay_charge(invoice_id=invoice.pk)
    assert (raised.value.status_code, raised.value.code) == (502, "provider_integration_error")
    assert "problem on our side" in raised.value.message
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.PENDING and payment.failure_code == ""
    assert not DunningCase.objects.exists()
    with time_machine.travel(DUE + timedelta(days=2), tick=False), django_capture_on_commit_callbacks(execute=True):
        assert dunning.dunning_due() == []
    assert [m.to for m in mailoutbox] == [["ops@cloudbill.example"]]  # staff, not the customer
    assert "refused our request" in mailoutbox[0].subject
    assert any(r.levelname == "ERROR" and "idempotency_error" in r.getMessage() for r in caplog.records)


# --- needs action --------------------------------------------------------------------------


def test_an_autopay_charge_that_needs_authentication_emails_a_link_is_not_a_dunning_failure_and_settles_once(
        postpaid, owner, client, fake_stripe, deliver_stripe, mailoutbox, django_capture_on_commit_callbacks):
    from payments.tasks import autopay_due_task

    _authenticating_card(fake_stripe, postpaid)
    invoice = make_open_invoice(postpaid, amount_due=Decimal("120.00"), due_at=DUE)
    with time_machine.travel(DUE, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert autopay_due_task() == 1
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.REQUIRES_ACTION and payment.provider_payment_id
    assert fake_stripe.objects[payment.provider_payment_id]["status"] == "requires_action"
    assert not DunningCase.objects.exists()
    [mail] = mailoutbox
    assert mail.to == ["ap@customer.example"]
    assert f"http://127.0.0.1:8000/payments/{payment.pk}/confirm" in mail.body

    client.force_login(owner)
    page = client.get(f"/payments/{payment.pk}/confirm")
    assert page.status_code == 200
    assert b"Confirm with your bank" in page.content and b"$120.00" in page.content
    sent = client.post(f"/payments/{payment.pk}/confirm")
    assert sent.status_code == 302
    assert sent["Location"] == f"https://hooks.stripe.com/3d_secure_2/hosted?payment_intent={payment.provider_payment_id}"
    pi = fake_stripe.objects[payment.provider_payment_id]
    assert pi["next_action"]["redirect_to_url"]["return_url"] == f"http://testserver/payments/{payment.pk}/return"

    events = fake_stripe.authenticate(payment.provider_payment_id)  # the customer passes 3-D Secure
    succeeded = next(e for e in events if e["type"] == "payment_intent.succeeded")
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver_stripe(succeeded).status_code == 200
        assert deliver_stripe(succeeded).status_code == 200
        assert client.get(f"/payments/{payment.pk}/return").status_code == 302
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert (invoice.status, invoice.amount_paid) == ("paid", Decimal("120.00"))
    assert not DunningCase.objects.exists()
    assert client.get(f"/payments/{payment.pk}/confirm").status_code == 302  # nothing left to confirm


def test_an_auto_top_up_that_needs_authentication_waits_for_the_customer_and_is_credited_once(
        org, fake_stripe, deliver_stripe, balance, mailoutbox, django_capture_on_commit_callbacks):
    org.billing_email = "ap@customer.example"
    org.save()
    card = _authenticating_card(fake_stripe, org)
    topup = _auto_topup(org)
    with django_capture_on_commit_callbacks(execute=True):
        credits_topup_dispatch_task(topup.pk)
        credits_topup_dispatch_task(topup.pk)  # redelivered: the same waiting payment, no second charge
    payment = Payment.objects.get()
    topup.refresh_from_db()
    assert (payment.status, payment.payment_method) == (PaymentStatus.REQUIRES_ACTION, card)
    assert topup.status == "pending" and _failed_topup_events(org) == 0
    assert [m.to for m in mailoutbox] == [["ap@customer.example"]] and "/confirm" in mailoutbox[0].body

    url = StripeGateway().confirm_on_session(payment, return_url="https://portal.example/back", attempt=1)
    assert url.startswith("https://hooks.stripe.com/3d_secure_2/hosted")
    events = fake_stripe.authenticate(payment.provider_payment_id)
    with django_capture_on_commit_callbacks(execute=True):
        for event in events:
            assert deliver_stripe(event).status_code == 200
    topup.refresh_from_db()
    assert topup.status == "succeeded" and balance(org) == Decimal("50.00")
    assert len([o for o in fake_stripe.objects.values() if o["object"] == "charge"]) == 1


def test_a_failed_authentication_is_a_real_decline_and_counts_for_dunning(
        postpaid, fake_stripe, deliver_stripe, django_capture_on_commit_callbacks):
    _authenticating_card(fake_stripe, postpaid)
    invoice = make_open_invoice(postpaid, amount_due=Decimal("60.00"), due_at=DUE)
    with django_capture_on_commit_callbacks(execute=True):
        payment = dunning.autopay_charge(invoice_id=invoice.pk)
    assert payment.status == PaymentStatus.REQUIRES_ACTION and not DunningCase.objects.exists()
    StripeGateway().confirm_on_session(payment, return_url="https://portal.example/back", attempt=1)
    [failed] = fake_stripe.authenticate(payment.provider_payment_id, succeeds=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver_stripe(failed).status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED
    assert DunningCase.objects.get(invoice=invoice).retries_done == 0


def test_another_organisations_confirmation_page_is_a_404(org, other_org, owner, client, fake_stripe):
    _authenticating_card(fake_stripe, other_org)
    theirs = services.payment_create(organization=other_org, purpose=Purpose.TOPUP, provider=Provider.STRIPE,
                                     flow=Flow.OFF_SESSION, amount=Decimal("50.00"),
                                     payment_method=other_org.payment_methods.get())
    client.force_login(owner)
    assert client.get(f"/payments/{theirs.pk}/confirm").status_code == 404
    assert client.post(f"/payments/{theirs.pk}/confirm").status_code == 404
