"""Each event type is emitted by the code path where it happens, in that change's
transaction (the message row exists exactly when the change committed)."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import BillingMode, Organization
from webhooks import services
from webhooks.catalogue import EVENT_TYPES, SUBSCRIBABLE
from webhooks.models import WebhookMessage

pytestmark = pytest.mark.django_db


@pytest.fixture
def listening(org):
    """An endpoint of `org` subscribed to everything (on a closed port: nothing runs after
    commit inside a test's transaction, so only the rows are looked at)."""
    return services.endpoint_create(organization=org, url="http://127.0.0.1:9/hook", event_types=SUBSCRIBABLE)


def _messages(event_type):
    return list(WebhookMessage.objects.filter(event_type=event_type).order_by("id"))


def test_finalizing_an_invoice_emits_invoice_finalized(org, listening):
    from invoices.tests.factories import make_invoice

    Organization.objects.filter(pk=org.pk).update(billing_mode=BillingMode.POSTPAID)
    org.refresh_from_db()
    invoice = make_invoice(org, amounts=("100.00",))
    [m] = _messages("invoice.finalized")
    assert m.organization_id == org.pk
    assert m.data["invoice_id"] == invoice.pk and m.data["number"] == invoice.number
    assert m.data["total"] == "100.00" and m.data["status"] == "open" and m.data["currency"] == org.currency
    assert set(m.data) == set(EVENT_TYPES["invoice.finalized"].fields)


def test_a_bank_transfer_paying_an_invoice_emits_payment_succeeded_and_invoice_paid(org, listening, make_member):
    from payments.services import payment_record_bank_transfer
    from payments.tests.factories import make_open_invoice

    invoice = make_open_invoice(org, amount_due=Decimal("120.00"))
    staff = make_member(org, "owner").user
    payment = payment_record_bank_transfer(invoice=invoice, amount=Decimal("120.00"), reference="TRX-1", actor=staff)
    [paid] = _messages("payment.succeeded")
    assert paid.data == {"payment_id": payment.pk, "purpose": "invoice", "provider": payment.provider,
                         "currency": org.currency, "amount": "120.00", "invoice_id": invoice.pk, "failure_code": ""}
    [inv] = _messages("invoice.paid")
    assert inv.data["invoice_id"] == invoice.pk and inv.data["status"] == "paid"

    from payments.services import refund_request
    from payments.services.refunds import refund_submit

    refund = refund_request(payment=payment, amount=Decimal("20.00"), reason="goodwill")
    refund_submit(refund_id=refund.pk)
    [refunded] = _messages("payment.refunded")
    assert refunded.data == {"refund_id": refund.pk, "payment_id": payment.pk, "currency": org.currency,
                             "amount": "20.00", "amount_refunded": "20.00", "fully_refunded": False}


def test_a_top_up_credited_emits_topup_succeeded(org, listening):
    from credits.services import credit_topup, topup_request

    topup = topup_request(organization=org, amount=Decimal("50.00"))
    entry = credit_topup(organization=org, amount=Decimal("50.00"), currency=org.currency, reference="pay:1",
                         topup_id=topup.pk)
    [m] = _messages("topup.succeeded")
    assert m.data == {"topup_id": topup.pk, "source": topup.source, "currency": org.currency, "amount": "50.00",
                      "ledger_entry_id": entry.pk}


def test_a_balance_below_the_warning_emits_credit_low_once(org, listening, settings):
    from credits import runway
    from credits.services import credit_adjust

    settings.CREDITS_LOW_BALANCE_WARNING = Decimal("10")
    credit_adjust(organization=org, amount=Decimal("5"), reason="test credit")
    runway.send_warnings()
    runway.send_warnings()
    [m] = _messages("credit.low")
    assert m.data["thresholds"] == ["balance:10"] and m.data["balance"] == "5.00"


def test_a_failed_automatic_charge_emits_a_dunning_step(org, listening):
    from payments.dunning import dunning_record_failure
    from payments.tests.factories import make_open_invoice

    invoice = make_open_invoice(org)
    case = dunning_record_failure(invoice_id=invoice.pk, attempt=0, message="Your card was declined.")
    [m] = _messages("dunning.step")
    assert m.data["invoice_id"] == invoice.pk and m.data["attempt"] == 0 and m.data["status"] == "active"
    assert case.next_retry_at is not None and m.data["next_retry_at"].startswith(f"{case.next_retry_at:%Y-%m-%dT%H:%M}")
    assert m.data["final_action"] == "" and m.data["message"] == "Your card was declined."


def test_an_invoice_past_due_emits_invoice_overdue_once_however_often_the_scan_runs(org, listening):
    from invoices.webhook_events import emit_overdue
    from payments.tests.factories import make_open_invoice

    late = make_open_invoice(org, due_at=timezone.now() - timedelta(hours=2))
    make_open_invoice(org, due_at=timezone.now() + timedelta(days=3))  # not yet due
    assert emit_overdue() == 1
    assert emit_overdue() == 1  # looked at again, not emitted again
    assert [m.data["invoice_id"] for m in _messages("invoice.overdue")] == [late.pk]


def test_every_subscribable_type_is_emitted_somewhere_outside_the_webhooks_app():
    """A type in the catalogue that no code emits would be documented and never sent."""
    root = Path(settings.BASE_DIR)
    source = "\n".join(p.read_text() for app in ("invoices", "payments", "credits", "budgets")
                       for p in (root / app).rglob("*.py") if "tests" not in p.parts)
    emitted = set(re.findall(r"\"([a-z]+\.[a-z_]+)\"", source)) | {
        f"payment.{s}" for s in ("succeeded", "failed")}  # payments/services/lifecycle.py: f"payment.{to}"
    assert set(SUBSCRIBABLE) - emitted == set()


def test_hibernation_emits_credit_exhausted_and_resource_hibernated_and_resume_resource_resumed(org, listening,
                                                                                               settings):
    from credits import hibernation
    from credits.models import Balance
    from credits.services import credit_adjust

    settings.CREDITS_HIBERNATE_GRACE_PERIOD = None
    settings.CREDITS_HIBERNATE_GRACE_AMOUNT = Decimal("0")
    credit_adjust(organization=org, amount=Decimal("1"), reason="test credit")
    balance = Balance.objects.get(organization=org)
    Balance.objects.filter(pk=balance.pk).update(amount=Decimal("-0.42"), depleted_at=timezone.now())
    assert hibernation.hibernate(balance_id=balance.pk) is not None
    [exhausted] = _messages("credit.exhausted")
    [hibernated] = _messages("resource.hibernated")
    assert exhausted.data == {"currency": org.currency, "balance": "-0.42"}
    assert hibernated.data["resource_ids"] == [] and "Credit exhausted" in hibernated.data["reason"]
    assert exhausted.pk < hibernated.pk  # the sequence says which came first

    Balance.objects.filter(pk=balance.pk).update(amount=Decimal("5"))
    hibernation.resume(organization_id=org.pk)
    [resumed] = _messages("resource.resumed")
    assert "Credit restored" in resumed.data["reason"]


def test_a_declined_payment_emits_payment_failed_once(org, listening):
    """The provider's news that a payment failed (webhook or poll: payment_apply_snapshot)
    emits payment.failed with the failure code; the same news again emits nothing."""
    from payments.gateways.base import PaymentSnapshot
    from payments.models import PaymentStatus
    from payments.services import payment_apply_snapshot
    from payments.tests.factories import PaymentFactory

    payment = PaymentFactory(organization=org, status=PaymentStatus.REQUIRES_ACTION, amount=Decimal("50.00"))
    news = PaymentSnapshot(status=PaymentStatus.FAILED, failure_code="card_declined",
                           failure_message="Your card was declined.")
    payment_apply_snapshot(payment_id=payment.pk, snapshot=news)
    payment_apply_snapshot(payment_id=payment.pk, snapshot=news)
    [m] = _messages("payment.failed")
    assert m.organization_id == org.pk
    assert m.data == {"payment_id": payment.pk, "purpose": payment.purpose, "provider": payment.provider,
                      "currency": org.currency, "amount": "50.00", "invoice_id": None, "failure_code": "card_declined"}
    assert set(m.data) == set(EVENT_TYPES["payment.failed"].fields)
