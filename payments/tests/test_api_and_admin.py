"""The payments API (customers read; staff refund) and the billing console's money actions."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from accounts.models import AuditLog
from accounts.tests.factories import UserFactory
from payments.models import Payment, PaymentStatus, Provider, Purpose, Refund, RefundStatus
from payments.tests.factories import PaymentFactory, make_open_invoice

pytestmark = pytest.mark.django_db


def _paid_topup(org, amount="50.00") -> Payment:
    from payments import services
    from payments.gateways.base import PaymentSnapshot

    payment = PaymentFactory(organization=org, amount=Decimal(amount))
    return services.payment_apply_snapshot(payment_id=payment.pk, snapshot=PaymentSnapshot(
        status=PaymentStatus.SUCCEEDED, amount=Decimal(amount), currency=org.currency))


def test_a_customer_lists_and_reads_only_its_payments(org, other_org, org_api):
    own, foreign = PaymentFactory(organization=org), PaymentFactory(organization=other_org)
    rows = org_api.get("/api/v1/payments").json()["results"]
    assert [r["id"] for r in rows] == [own.pk]
    assert rows[0]["amount"] == "50.000000000000" and rows[0]["currency"] == "USD"
    assert org_api.get(f"/api/v1/payments/{own.pk}").status_code == 200
    assert org_api.get(f"/api/v1/payments/{foreign.pk}").status_code == 404


def test_a_customer_key_cannot_refund(org, org_api):
    payment = _paid_topup(org)
    response = org_api.post(f"/api/v1/payments/{payment.pk}/refund", {"reason": "x"}, format="json")
    assert response.status_code == 403 and Refund.objects.count() == 0


def test_staff_refund_through_the_api_reverses_the_ledger_once(org, platform_api, balance,
                                                               django_capture_on_commit_callbacks):
    payment = _paid_topup(org)
    body = {"amount": "20.00", "reason": "Goodwill after the outage"}
    with django_capture_on_commit_callbacks(execute=True):
        first = platform_api.post(f"/api/v1/payments/{payment.pk}/refund", body, format="json",
                                  HTTP_IDEMPOTENCY_KEY="refund-1")
        again = platform_api.post(f"/api/v1/payments/{payment.pk}/refund", body, format="json",
                                  HTTP_IDEMPOTENCY_KEY="refund-1")
    assert first.status_code == again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    refund = Refund.objects.get()
    assert refund.status == RefundStatus.SUCCEEDED and refund.provider_refund_id == f"sbx_re_{refund.pk}"
    assert balance(org) == Decimal("30.00")
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.SUCCEEDED, Decimal("20.00"))
    assert AuditLog.objects.filter(action="refund.requested", reason="Goodwill after the outage").count() == 1


def test_a_full_refund_makes_the_payment_refunded_and_more_is_refused(org, platform_api,
                                                                      django_capture_on_commit_callbacks):
    payment = _paid_topup(org)
    with django_capture_on_commit_callbacks(execute=True):
        platform_api.post(f"/api/v1/payments/{payment.pk}/refund", {"reason": "closed account"}, format="json")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED and payment.amount_refunded == Decimal("50.00")
    response = platform_api.post(f"/api/v1/payments/{payment.pk}/refund", {"reason": "again"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"


def test_a_refund_larger_than_what_is_left_or_without_reason_is_a_400(org, platform_api):
    payment = _paid_topup(org)
    too_much = platform_api.post(f"/api/v1/payments/{payment.pk}/refund", {"amount": "50.01", "reason": "x"},
                                 format="json")
    assert too_much.status_code == 400 and "amount" in too_much.json()["error"]["fields"]
    no_reason = platform_api.post(f"/api/v1/payments/{payment.pk}/refund", {"amount": "5"}, format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["error"]["fields"]
    unknown = platform_api.post(f"/api/v1/payments/{payment.pk}/refund", {"reason": "x", "card": "1"}, format="json")
    assert unknown.status_code == 400
    assert Refund.objects.count() == 0


def test_refunding_an_invoice_payment_opens_the_invoice_again_and_takes_the_money_back_once(
        org, owner, client, balance, django_capture_on_commit_callbacks):
    from payments import services

    invoice = make_open_invoice(org, amount_due=Decimal("80.00"))
    staff = UserFactory(is_staff=True)
    payment = services.payment_record_bank_transfer(invoice=invoice, amount=Decimal("80.00"), reference="TRX-1",
                                                    actor=staff)
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    after_payment = balance(org)
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_request(payment=payment, amount=Decimal("10.00"), reason="overpaid", actor=staff)
    refund = Refund.objects.get()
    services.refund_submit(refund_id=refund.pk)  # submitted again: nothing more happens
    refund.refresh_from_db()
    invoice.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == (
        "open", Decimal("70.00"), Decimal("10.00"))
    assert balance(org) == after_payment - Decimal("10.00")
    assert invoice.payment_reversals.get().reference == f"refund:{refund.pk}"
    assert not AuditLog.objects.filter(action="refund.invoice_not_reopened").exists()
    client.force_login(owner)
    page = client.get(f"/invoices/{invoice.pk}/").content.decode()
    assert f"payment:{payment.pk}" in page and "Given back" in page and f"refund:{refund.pk}" in page


# --- console ---------------------------------------------------------------------------


@pytest.fixture
def console(client, staff_user):
    client.force_login(staff_user)
    return client


def test_staff_record_a_bank_transfer_against_an_invoice_with_an_audit_entry(console, org, staff_user):
    invoice = make_open_invoice(org, amount_due=Decimal("250.00"))
    response = console.post("/console/payments/payment/bank-transfer/", {
        "invoice": invoice.pk, "amount": "250.00", "reference": "SEPA 2026-0415 ACME", "reason": "statement line 12"})
    assert response.status_code == 302
    payment = Payment.objects.get()
    assert (payment.provider, payment.status, payment.purpose) == (Provider.MANUAL, PaymentStatus.SUCCEEDED,
                                                                   Purpose.INVOICE)
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    entry = AuditLog.objects.get(action="payment.bank_transfer_recorded")
    assert (entry.actor, entry.organization, entry.reason) == (staff_user, org, "statement line 12")


def test_recording_a_bank_transfer_needs_the_permission(client, org):
    clerk = UserFactory(is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_payment"))
    client.force_login(clerk)
    invoice = make_open_invoice(org)
    response = client.post("/console/payments/payment/bank-transfer/", {
        "invoice": invoice.pk, "amount": "10.00", "reference": "X"})
    assert response.status_code == 403 and Payment.objects.count() == 0


def test_staff_refund_in_the_console_needs_the_permission_and_a_reason(console, client, org,
                                                                      django_capture_on_commit_callbacks):
    payment = _paid_topup(org)
    assert "reason" in console.post(f"/console/payments/payment/{payment.pk}/refund/", {"amount": "5"}).context[
        "form"].errors
    with django_capture_on_commit_callbacks(execute=True):
        assert console.post(f"/console/payments/payment/{payment.pk}/refund/",
                            {"amount": "5", "reason": "duplicate charge"}).status_code == 302
    assert Refund.objects.get().amount == Decimal("5.00")
    reader = UserFactory(is_staff=True)
    reader.user_permissions.add(Permission.objects.get(codename="view_payment"))
    client.force_login(reader)
    assert client.post(f"/console/payments/payment/{payment.pk}/refund/", {"reason": "x"}).status_code == 403


def test_the_console_lists_payments_webhook_events_and_dunning(console, org):
    PaymentFactory(organization=org)
    for path in ("payment", "refund", "webhookevent", "dunningcase", "paymentmethod"):
        assert console.get(f"/console/payments/{path}/").status_code == 200


def test_the_console_shows_amounts_as_people_read_them(console, org, staff_user):
    from decimal import Decimal

    from accounts.console import MoneyInput
    from payments import services

    invoice = make_open_invoice(org, amount_due=Decimal("20000.00"))
    payment = services.payment_record_bank_transfer(invoice=invoice, amount=Decimal("20000.00"), reference="TRX-20k",
                                                    actor=staff_user)
    for url in ("/console/payments/payment/", f"/console/payments/payment/{payment.pk}/change/"):
        page = console.get(url).content.decode()
        assert "20,000.00" in page and "20000.000000000000" not in page, url
    assert MoneyInput().format_value(Decimal("0.034333333333")) == "0.034333333333"  # per-minute precision kept
    assert MoneyInput().format_value(Decimal("-1234.500000000000")) == "-1234.50"
    assert MoneyInput().format_value(Decimal("0E-12")) == "0.00"


@pytest.mark.parametrize("amount", ["", " 10", "1E+2", "١٠", 10, "10.5.0"])
def test_a_refund_amount_outside_the_pattern_is_a_400_field_error(org, platform_api, amount):
    payment = _paid_topup(org)
    response = platform_api.post(f"/api/v1/payments/{payment.pk}/refund", {"amount": amount, "reason": "x"},
                                 format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()["error"]["fields"]) == {"amount"}
    assert not Refund.objects.exists()
