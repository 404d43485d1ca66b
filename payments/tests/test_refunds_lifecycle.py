"""A refund's whole life at the provider (issue 13, finding 1; finding 6, the dispute after
a partial refund): created once, then only looked up; pending, requires_action,
succeeded, failed and canceled on both providers; moved by webhooks in any order and by
reconciliation; the reversal of credit exactly once.

The fakes keep their providers' idempotency-key lifetimes (Stripe 24 hours; PayPal's
Payments v2 45 days) on a clock the tests move on (`fake.advance`); our side is told the
same time through `reconcile(now=…)` / `refund_submit(now=…)`.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AuditLog
from core.errors import DomainError
from credits.models import LedgerEntry
from payments import services
from payments.gateways.base import GatewayUnavailable
from payments.gateways.paypal_gateway import PayPalGateway
from payments.models import Payment, PaymentStatus, Provider, Purpose, Refund, RefundStatus, WebhookEvent
from payments.reconcile import reconcile
from payments.tests.conftest import return_urls

pytestmark = pytest.mark.django_db
R = RefundStatus


def _later(hours: float = 0, days: float = 0):
    return timezone.now() + timedelta(hours=hours, days=days)


def _stripe_paid(org, fake_stripe, deliver_stripe, amount: str = "80.00") -> Payment:
    payment = services.payment_start_checkout(organization=org, purpose=Purpose.TOPUP, provider=Provider.STRIPE,
                                              amount=Decimal(amount), urls=return_urls)
    for event in fake_stripe.complete_checkout(payment.provider_checkout_id):
        assert deliver_stripe(event).status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    return payment


def _paypal_paid(org, fake_paypal, amount: str = "75.00") -> Payment:
    payment = services.payment_start_checkout(organization=org, purpose=Purpose.TOPUP, provider=Provider.PAYPAL,
                                              amount=Decimal(amount), urls=return_urls)
    fake_paypal.approve(payment.provider_checkout_id)
    services.payment_apply_snapshot(payment_id=payment.pk, snapshot=PayPalGateway().capture(payment))
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    return payment


def _refund(payment: Payment, amount: str | None, *, submit: bool = True) -> Refund:
    refund = services.refund_request(payment=payment, amount=None if amount is None else Decimal(amount),
                                     reason="customer asked")
    if submit:
        services.refund_submit(refund_id=refund.pk)
    refund.refresh_from_db()
    return refund


def _stripe_refunds(fake_stripe) -> list[dict]:
    return [o for o in fake_stripe.objects.values() if o["object"] == "refund"]


def _refund_entries(org) -> list[Decimal]:
    return list(LedgerEntry.objects.filter(organization=org, kind="refund").values_list("amount", flat=True))


# --- Stripe: created once, then looked up ------------------------------------------------


def test_a_partial_refund_still_pending_after_25_hours_is_looked_up_not_paid_twice(
        org, fake_stripe, deliver_stripe, balance):
    fake_stripe.refund_outcome = "pending"
    payment = _stripe_paid(org, fake_stripe, deliver_stripe)
    refund = _refund(payment, "30.00")
    assert refund.status == R.PENDING and refund.provider_refund_id.startswith("re_")

    fake_stripe.advance(hours=25)  # Stripe has forgotten the key `refund:{id}`
    for hours in (25, 49):
        report = reconcile(now=_later(hours=hours))
        assert report.errors == []
    assert len(_stripe_refunds(fake_stripe)) == 1 and fake_stripe.count("POST", "/v1/refunds") == 1
    assert fake_stripe.count("GET", f"/v1/refunds/{refund.provider_refund_id}") >= 2

    for event in fake_stripe.settle_refund(refund.provider_refund_id, "succeeded"):
        assert deliver_stripe(event).status_code == 200
    refund.refresh_from_db()
    payment.refresh_from_db()
    assert refund.status == R.SUCCEEDED and payment.amount_refunded == Decimal("30.00")
    assert balance(org) == Decimal("50.00") and len(_refund_entries(org)) == 1


def test_a_full_refund_pending_past_the_key_lifetime_is_not_failed_and_reverses_once_when_it_succeeds(
        org, fake_stripe, deliver_stripe, balance):
    fake_stripe.refund_outcome = "pending"
    payment = _stripe_paid(org, fake_stripe, deliver_stripe)
    refund = _refund(payment, None)
    assert refund.amount == Decimal("80.00") and refund.status == R.PENDING

    fake_stripe.advance(hours=25)
    reconcile(now=_later(hours=25))
    refund.refresh_from_db()
    assert refund.status == R.PENDING  # not "failed" from a refused second create
    assert len(_stripe_refunds(fake_stripe)) == 1

    events = fake_stripe.settle_refund(refund.provider_refund_id, "succeeded")
    assert [e["type"] for e in events] == ["refund.updated"]
    for _ in range(2):
        for event in events:
            assert deliver_stripe(event).status_code == 200
        reconcile(now=_later(hours=26))
    refund.refresh_from_db()
    payment.refresh_from_db()
    assert refund.status == R.SUCCEEDED and payment.status == PaymentStatus.REFUNDED
    assert balance(org) == Decimal("0") and _refund_entries(org) == [Decimal("-80")]


def test_a_refund_wrongly_believed_failed_still_reverses_once_when_stripe_says_it_succeeded(
        org, fake_stripe, deliver_stripe, balance):
    fake_stripe.refund_outcome = "pending"
    payment = _stripe_paid(org, fake_stripe, deliver_stripe)
    refund = _refund(payment, "80.00")
    from payments.gateways.base import RefundSnapshot

    services.refund_apply_snapshot(payment_id=payment.pk, snapshot=RefundSnapshot(
        provider_refund_id=refund.provider_refund_id, status=R.FAILED, amount=refund.amount, currency="USD"))
    refund.refresh_from_db()
    assert refund.status == R.FAILED
    for event in fake_stripe.settle_refund(refund.provider_refund_id, "succeeded") * 2:
        deliver_stripe(event)
    refund.refresh_from_db()
    assert refund.status == R.SUCCEEDED and balance(org) == Decimal("0") and len(_refund_entries(org)) == 1
    # A later "failed" for a succeeded refund moves nothing back; a person is told.
    for event in fake_stripe.settle_refund(refund.provider_refund_id, "failed"):
        deliver_stripe(event)
    refund.refresh_from_db()
    assert refund.status == R.SUCCEEDED and refund.needs_attention and balance(org) == Decimal("0")


def test_a_lost_create_answer_is_found_at_stripe_by_our_id_after_the_key_lifetime(
        org, fake_stripe, deliver_stripe, balance, settings):
    settings.PAYMENTS_PROVIDER_TIMEOUT = 0.5
    payment = _stripe_paid(org, fake_stripe, deliver_stripe)
    refund = _refund(payment, "30.00", submit=False)
    fake_stripe.stall_next("/v1/refunds", 1.5)
    with pytest.raises(GatewayUnavailable):
        services.refund_submit(refund_id=refund.pk)  # Stripe refunded; its answer never came
    refund.refresh_from_db()
    assert refund.status == R.PENDING and refund.provider_refund_id == ""

    fake_stripe.advance(hours=25)
    services.refund_submit(refund_id=refund.pk, now=_later(hours=25))
    refund.refresh_from_db()
    assert refund.status == R.SUCCEEDED and refund.provider_refund_id == _stripe_refunds(fake_stripe)[0]["id"]
    assert len(_stripe_refunds(fake_stripe)) == 1 and balance(org) == Decimal("50.00")


def test_a_refund_inside_the_key_lifetime_is_sent_again_with_its_key_and_stripe_replays(
        org, fake_stripe, deliver_stripe, settings):
    settings.PAYMENTS_PROVIDER_TIMEOUT = 0.5
    payment = _stripe_paid(org, fake_stripe, deliver_stripe)
    refund = _refund(payment, "30.00", submit=False)
    fake_stripe.stall_next("/v1/refunds", 1.5)
    with pytest.raises(GatewayUnavailable):
        services.refund_submit(refund_id=refund.pk)
    fake_stripe.advance(hours=23)
    services.refund_submit(refund_id=refund.pk, now=_later(hours=22))
    refund.refresh_from_db()
    assert refund.status == R.SUCCEEDED and len(_stripe_refunds(fake_stripe)) == 1


def test_a_refund_stripe_never_saw_is_left_for_a_person_past_the_key_lifetime_never_created_blind(
        org, fake_stripe, deliver_stripe, balance, client, staff_user):
    payment = _stripe_paid(org, fake_stripe, deliver_stripe)
    refund = _refund(payment, "30.00", submit=False)  # its submit task was lost
    fake_stripe.advance(hours=25)
    report = reconcile(now=_later(hours=25))
    assert len(report.errors) == 1 and f"refund {refund.pk}" in report.errors[0]
    refund.refresh_from_db()
    assert refund.status == R.PENDING and "no refund of ours is there" in refund.needs_attention
    assert _stripe_refunds(fake_stripe) == [] and balance(org) == Decimal("80.00")
    assert AuditLog.objects.filter(action="refund.needs_attention").count() == 1
    reconcile(now=_later(hours=26))
    assert AuditLog.objects.filter(action="refund.needs_attention").count() == 1 and _stripe_refunds(fake_stripe) == []
    client.force_login(staff_user)  # staff see it in the console, under "needs a person"
    page = client.get("/console/payments/refund/?attention=yes")
    assert page.status_code == 200 and "no refund of ours is there" in page.content.decode()


# --- Stripe: states and events -----------------------------------------------------------


def test_a_pending_refund_that_fails_frees_its_amount_for_a_new_refund(org, fake_stripe, deliver_stripe, balance):
    fake_stripe.refund_outcome = "pending"
    payment = _stripe_paid(org, fake_stripe, deliver_stripe)
    refund = _refund(payment, None)
    with pytest.raises(DomainError, match="At most"):
        services.refund_request(payment=payment, amount=Decimal("1.00"), reason="more")

    events = fake_stripe.settle_refund(refund.provider_refund_id, "failed", failure_reason="expired_or_canceled_card")
    assert [e["type"] for e in events] == ["refund.updated", "refund.failed"]
    for event in events:
        assert deliver_stripe(event).status_code == 200
    refund.refresh_from_db()
    assert refund.status == R.FAILED and refund.failure_message == "expired_or_canceled_card"
    assert balance(org) == Decimal("80.00") and _refund_entries(org) == []

    fake_stripe.refund_outcome = "succeeded"
    again = _refund(payment, None)
    assert again.amount == Decimal("80.00") and again.status == R.SUCCEEDED
    assert balance(org) == Decimal("0")


@pytest.mark.parametrize("outcome", ["succeeded", "canceled"])
def test_a_refund_that_requires_action_holds_its_amount_until_it_succeeds_or_is_canceled(
        outcome, org, fake_stripe, deliver_stripe, balance):
    fake_stripe.refund_outcome = "requires_action"
    payment = _stripe_paid(org, fake_stripe, deliver_stripe)
    refund = _refund(payment, "30.00")
    assert refund.status == R.REQUIRES_ACTION
    with pytest.raises(DomainError, match="At most"):
        services.refund_request(payment=payment, amount=Decimal("60.00"), reason="more")

    for event in fake_stripe.settle_refund(refund.provider_refund_id, outcome):
        assert deliver_stripe(event).status_code == 200
    refund.refresh_from_db()
    assert refund.status == outcome
    if outcome == "succeeded":
        assert balance(org) == Decimal("50.00")
    else:
        assert balance(org) == Decimal("80.00")
        assert _refund(payment, "80.00").status == R.REQUIRES_ACTION  # the whole amount is free again


def test_refund_events_out_of_order_end_where_stripe_is_and_reverse_once(org, fake_stripe, deliver_stripe, balance):
    fake_stripe.refund_outcome = "pending"
    payment = _stripe_paid(org, fake_stripe, deliver_stripe)
    refund = _refund(payment, "30.00")
    events = [*fake_stripe.settle_refund(refund.provider_refund_id, "requires_action"),
              *fake_stripe.settle_refund(refund.provider_refund_id, "pending"),
              *fake_stripe.settle_refund(refund.provider_refund_id, "succeeded")]
    assert [e["data"]["object"]["status"] for e in events] == ["requires_action", "pending", "succeeded"]
    for event in reversed(events):  # the newest first, the oldest last
        assert deliver_stripe(event).status_code == 200
    refund.refresh_from_db()
    assert refund.status == R.SUCCEEDED
    assert balance(org) == Decimal("50.00") and len(_refund_entries(org)) == 1
    assert WebhookEvent.objects.filter(event_type="refund.updated", status="processed").count() == 3


def test_the_reconciler_fetches_refund_events_and_moves_a_refund_whose_webhooks_were_lost(
        org, fake_stripe, deliver_stripe, balance):
    from payments.webhooks import STRIPE_EVENT_TYPES

    assert {"refund.created", "refund.updated", "refund.failed", "charge.refunded"} <= set(STRIPE_EVENT_TYPES)
    fake_stripe.refund_outcome = "pending"
    payment = _stripe_paid(org, fake_stripe, deliver_stripe)
    refund = _refund(payment, "30.00")
    fake_stripe.settle_refund(refund.provider_refund_id, "succeeded")  # its webhook never came
    report = reconcile(now=_later(hours=1))
    assert report.errors == []
    refund.refresh_from_db()
    assert refund.status == R.SUCCEEDED and balance(org) == Decimal("50.00")
    assert WebhookEvent.objects.filter(event_type="refund.updated").exists()


def test_a_refund_in_stripes_dashboard_still_arrives_through_charge_refunded(org, fake_stripe, deliver_stripe,
                                                                              balance):
    payment = _stripe_paid(org, fake_stripe, deliver_stripe)
    fake_stripe._create_refund({"payment_intent": payment.provider_payment_id, "amount": "2000"})
    refunded = [e for e in fake_stripe.events if e["type"] == "charge.refunded"][-1]
    assert deliver_stripe(refunded).status_code == 200
    assert Refund.objects.get().status == R.SUCCEEDED and balance(org) == Decimal("60.00")


def test_a_stripe_refund_is_shaped_like_stripes_own_example(org, fake_stripe, deliver_stripe):
    from payments.tests.provider_contract import stripe_fixtures

    example = stripe_fixtures()["refund"]
    payment = _stripe_paid(org, fake_stripe, deliver_stripe)
    refund = _refund(payment, "5.00")
    assert set(example) <= set(fake_stripe.objects[refund.provider_refund_id])


# --- PayPal ------------------------------------------------------------------------------


def test_a_pending_paypal_refund_completes_through_reconciliation_when_its_webhook_is_lost(
        org, fake_paypal, deliver_paypal, balance):
    fake_paypal.refund_outcome = "PENDING"
    payment = _paypal_paid(org, fake_paypal)
    refund = _refund(payment, "20.00")
    assert refund.status == R.PENDING and refund.provider_refund_id in fake_paypal.refunds
    pending = [e for e in fake_paypal.events if e["event_type"] == "PAYMENT.REFUND.PENDING"][-1]
    assert deliver_paypal(pending).status_code == 200
    assert WebhookEvent.objects.get(event_type="PAYMENT.REFUND.PENDING").status == "processed"

    fake_paypal.settle_refund(refund.provider_refund_id, "COMPLETED")  # its webhook never came
    assert reconcile(now=_later(hours=1)).errors == []
    refund.refresh_from_db()
    assert refund.status == R.SUCCEEDED and balance(org) == Decimal("55.00")
    assert fake_paypal.count("POST", "/v2/payments/captures/") == 1
    completed = [e for e in fake_paypal.events if e["event_type"] == "PAYMENT.CAPTURE.REFUNDED"][-1]
    assert deliver_paypal(completed).status_code == 200
    assert balance(org) == Decimal("55.00") and len(_refund_entries(org)) == 1


@pytest.mark.parametrize("outcome", ["FAILED", "CANCELLED"])
def test_a_pending_paypal_refund_that_fails_or_is_cancelled_frees_its_amount(
        outcome, org, fake_paypal, deliver_paypal, balance):
    fake_paypal.refund_outcome = "PENDING"
    payment = _paypal_paid(org, fake_paypal)
    refund = _refund(payment, None)
    for event in fake_paypal.settle_refund(refund.provider_refund_id, outcome):
        assert event["event_type"] == "PAYMENT.REFUND.FAILED"
        assert deliver_paypal(event).status_code == 200
    if outcome == "CANCELLED":  # no event for it: reconciliation finds it
        reconcile(now=_later(hours=1))
    refund.refresh_from_db()
    assert refund.status == {"FAILED": R.FAILED, "CANCELLED": R.CANCELED}[outcome]
    assert balance(org) == Decimal("75.00")
    fake_paypal.refund_outcome = "COMPLETED"
    assert _refund(payment, None).status == R.SUCCEEDED and balance(org) == Decimal("0")


def test_a_lost_paypal_answer_is_found_in_the_order_by_our_id_after_the_request_id_lifetime(
        org, fake_paypal, balance, settings):
    settings.PAYMENTS_PROVIDER_TIMEOUT = 0.5
    payment = _paypal_paid(org, fake_paypal)
    refund = _refund(payment, "20.00", submit=False)
    fake_paypal.stall_next(f"/v2/payments/captures/{payment.provider_payment_id}/refund", 1.5)
    with pytest.raises(GatewayUnavailable):
        services.refund_submit(refund_id=refund.pk)
    fake_paypal.advance(days=46)  # PayPal keeps Payments v2 request ids 45 days
    services.refund_submit(refund_id=refund.pk, now=_later(days=46))
    refund.refresh_from_db()
    assert refund.status == R.SUCCEEDED and refund.provider_refund_id in fake_paypal.refunds
    assert len(fake_paypal.refunds) == 1 and balance(org) == Decimal("55.00")


def test_the_fake_paypal_forgets_request_ids_as_paypal_does():
    from payments.tests.fakes import FakePayPal

    fake = FakePayPal()
    assert fake.key_lifetime("/v2/checkout/orders") == 6 * 3600
    assert fake.key_lifetime("/v2/payments/captures/X/refund") == 45 * 86400


def test_a_paypal_refund_is_valid_against_paypals_refund_schema(org, fake_paypal):
    from payments.tests.provider_contract import _validator

    validator = _validator("payments_payment_v2.json", "/components/schemas/refund")
    fake_paypal.refund_outcome = "PENDING"
    refund = _refund(_paypal_paid(org, fake_paypal), "5.00")
    validator.validate(fake_paypal.refunds[refund.provider_refund_id])
    fake_paypal.settle_refund(refund.provider_refund_id, "COMPLETED")
    validator.validate(fake_paypal.refunds[refund.provider_refund_id])


# --- disputes after a partial refund (finding 6) ------------------------------------------


@pytest.mark.parametrize("reported", [True, False], ids=["amount_refunded given", "amount_refunded omitted"])
def test_a_paypal_dispute_won_by_the_buyer_after_a_partial_refund_reverses_only_the_rest_once(
        reported, org, fake_paypal, deliver_paypal, balance):
    payment = _paypal_paid(org, fake_paypal)
    assert _refund(payment, "20.00").status == R.SUCCEEDED
    opened = fake_paypal.dispute(payment.provider_payment_id)
    assert deliver_paypal(opened).status_code == 200
    resolved = fake_paypal.resolve_dispute(opened["resource"]["dispute_id"], buyer_wins=True,
                                           report_amount_refunded=reported)
    for _ in range(2):
        assert deliver_paypal(resolved).status_code == 200
    payment.refresh_from_db()
    dispute_refund = Refund.objects.get(provider_refund_id=f"dispute:{opened['resource']['dispute_id']}")
    assert dispute_refund.amount == Decimal("55.00") and dispute_refund.status == R.SUCCEEDED
    assert payment.status == PaymentStatus.REFUNDED and payment.amount_refunded == Decimal("75.00")
    assert balance(org) == Decimal("0") and len(_refund_entries(org)) == 2
    assert WebhookEvent.objects.get(event_type="CUSTOMER.DISPUTE.RESOLVED").status == "processed"


def test_a_stripe_dispute_lost_after_a_partial_refund_reverses_what_is_left_once_and_tells_a_person(
        org, fake_stripe, deliver_stripe, balance):
    payment = _stripe_paid(org, fake_stripe, deliver_stripe)
    assert _refund(payment, "30.00").status == R.SUCCEEDED
    opened = fake_stripe.dispute(payment.provider_charge_id or fake_stripe.objects[payment.provider_payment_id][
        "latest_charge"])
    assert opened["data"]["object"]["amount"] == 8000  # the bank claims the whole charge
    deliver_stripe(opened)
    closed = fake_stripe.close_dispute(opened["data"]["object"]["id"], won=False)
    for _ in range(2):
        assert deliver_stripe(closed).status_code == 200
    payment.refresh_from_db()
    lost = Refund.objects.get(provider_refund_id=f"dispute:{opened['data']['object']['id']}")
    assert lost.amount == Decimal("50.00") and payment.status == PaymentStatus.REFUNDED
    assert balance(org) == Decimal("0") and len(_refund_entries(org)) == 2
    excess = AuditLog.objects.get(action="payment.provider_reversal_exceeds_refundable")
    assert Decimal(str(excess.changes["excess"])) == Decimal("30")
