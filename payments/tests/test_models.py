"""The payment state machine, keys and amounts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import DomainError
from payments import services
from payments.models import PAYMENT_TRANSITIONS, InvalidTransition, PaymentStatus, Provider, Purpose
from payments.tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db
S = PaymentStatus


def test_the_idempotency_key_is_built_from_our_row_id(org):
    payment = PaymentFactory(organization=org)
    assert payment.idempotency_key == f"payment:{payment.pk}"


@pytest.mark.parametrize("start,to", [(S.SUCCEEDED, S.FAILED), (S.REFUNDED, S.SUCCEEDED), (S.CANCELED, S.SUCCEEDED),
                                      (S.SUCCEEDED, S.PENDING), (S.PROCESSING, S.CANCELED)])
def test_a_bad_transition_raises_a_domain_error(org, start, to):
    payment = PaymentFactory(organization=org, status=start)
    with pytest.raises(InvalidTransition):
        payment.check_transition(to)
    assert issubclass(InvalidTransition, DomainError)


def test_every_status_has_its_row_in_the_transition_table():
    assert set(PAYMENT_TRANSITIONS) == set(S.values)
    assert PAYMENT_TRANSITIONS[S.REFUNDED] == frozenset() and PAYMENT_TRANSITIONS[S.CANCELED] == frozenset()


def test_cancelling_a_succeeded_payment_changes_nothing(org):
    payment = PaymentFactory(organization=org, status=S.SUCCEEDED)
    assert services.payment_cancel(payment=payment).status == S.SUCCEEDED


@pytest.mark.parametrize("amount,currency,message", [
    ("10.005", "USD", "minor-unit"), ("0", "USD", "greater than zero"), ("4.99", "USD", r"at least \$5\.00"),
    ("10.5", "JPY", "minor-unit"),
])
def test_top_up_amounts_are_whole_minor_units_within_limits(org, amount, currency, message):
    org.currency = currency
    org.save()
    with pytest.raises(DomainError, match=message):
        services.payment_create(organization=org, purpose=Purpose.TOPUP, provider=Provider.SANDBOX,
                                amount=Decimal(amount))


def test_a_float_never_becomes_money(org):
    with pytest.raises(TypeError):
        services.payment_create(organization=org, purpose=Purpose.TOPUP, provider=Provider.SANDBOX, amount=10.5)


def test_a_provider_reporting_less_records_what_was_paid_and_tells_staff(org, balance, mailoutbox, settings,
                                                                        django_capture_on_commit_callbacks):
    """Issue 13, finding 2: a completed payment is never refused for ever; never credited
    beyond what the provider says it took either."""
    from accounts.models import AuditLog
    from payments.gateways.base import PaymentSnapshot

    settings.ADMINS = [("Billing", "billing-staff@cloudbill.example")]
    payment = PaymentFactory(organization=org, amount=Decimal("50.00"))
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):  # a redelivery changes nothing more
            services.payment_apply_snapshot(payment_id=payment.pk, snapshot=PaymentSnapshot(
                status=S.SUCCEEDED, amount=Decimal("5.00"), currency="USD"))
    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED and payment.amount == Decimal("5.00") and balance(org) == Decimal("5.00")
    flagged = AuditLog.objects.get(action="payment.amount_mismatch")
    assert flagged.changes["expected"] == "50.00 USD" and flagged.changes["reported"] == "5.00 USD"
    assert len(mailoutbox) == 1 and "another amount" in mailoutbox[0].subject


def test_a_provider_reporting_another_currency_records_ours_and_tells_staff(org, balance, mailoutbox, settings,
                                                                           django_capture_on_commit_callbacks):
    from payments.gateways.base import PaymentSnapshot

    settings.ADMINS = [("Billing", "billing-staff@cloudbill.example")]
    payment = PaymentFactory(organization=org, amount=Decimal("100.00"))
    with django_capture_on_commit_callbacks(execute=True):
        services.payment_apply_snapshot(payment_id=payment.pk, snapshot=PaymentSnapshot(
            status=S.SUCCEEDED, amount=Decimal("93.50"), currency="EUR"))
    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED and payment.amount == Decimal("100.00") and balance(org) == Decimal("100.00")
    assert "93.50 EUR" in mailoutbox[0].body


def test_the_demo_seed_is_idempotent(db):
    from accounts.demo import seed as seed_accounts
    from payments.demo import seed
    from payments.models import Payment, PaymentMethod

    seed_accounts()
    seed()
    seed()
    assert PaymentMethod.objects.filter(provider="sandbox").count() == 2
    assert Payment.objects.get().status == S.SUCCEEDED
