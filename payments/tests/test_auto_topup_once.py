"""One threshold crossing charges the saved card at most once (issue 12, finding 6).

The outside test saw the card charged $500 twice while the balance stayed below the
threshold: the settings' re-arm time moved on every save, so resubmitting the auto top-up
form unchanged made the answered crossing look new; and nothing stopped a second auto
top-up while one was still open."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from credits import services as credits
from credits.models import TopUp
from payments.models import Payment, PaymentStatus

pytestmark = pytest.mark.django_db


def _configure(org, threshold="1000", amount="500"):
    return credits.auto_topup_configure(
        organization=org, enabled=True, threshold=Decimal(threshold), amount=Decimal(amount)
    )


def _charges(fake_stripe) -> int:
    return len([o for o in fake_stripe.objects.values() if o["object"] == "payment_intent"])


def test_resaving_unchanged_settings_in_a_crossing_charges_the_card_once(
    org, fake_stripe, stripe_card, balance, django_capture_on_commit_callbacks
):
    stripe_card(org)
    _configure(org)
    with django_capture_on_commit_callbacks(execute=True):
        credits.credit_adjust(organization=org, amount=Decimal("-2000"), reason="staff correction, INC-1")
    assert _charges(fake_stripe) == 1 and balance(org) == Decimal("-1500.00")  # still below the threshold
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):  # the customer resubmits the form; usage goes on every minute
            _configure(org)
            credits.ledger_post(organization=org, amount=Decimal("-1"), kind="usage", reason="usage")
            credits.auto_topup_check(organization_id=org.pk, currency="USD")
    assert _charges(fake_stripe) == 1
    assert Payment.objects.filter(status=PaymentStatus.SUCCEEDED).count() == 1
    assert TopUp.objects.filter(source="auto").count() == 1


def test_a_second_trigger_while_an_auto_top_up_is_open_starts_none(
    org, fake_stripe, stripe_card, django_capture_on_commit_callbacks
):
    stripe_card(org)
    _configure(org)
    credits.credit_adjust(organization=org, amount=Decimal("-2000"), reason="staff correction, INC-1")
    first = credits.auto_topup_check(organization_id=org.pk, currency="USD")
    assert first is not None and first.status == "pending"  # its charge has not run yet
    # A real change of the settings starts a new crossing, but not while the first is open.
    _configure(org, threshold="1200")
    credits.ledger_post(organization=org, amount=Decimal("-1"), kind="usage", reason="usage")
    assert credits.auto_topup_check(organization_id=org.pk, currency="USD") is None
    assert TopUp.objects.filter(source="auto").count() == 1


def test_the_database_refuses_a_second_open_auto_top_up(org):
    TopUp.objects.create(
        organization=org, source="auto", amount=Decimal("500"), currency="USD", crossing_key="a"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        TopUp.objects.create(
            organization=org,
            source="auto",
            amount=Decimal("500"),
            currency="USD",
            crossing_key="b",
            status="failed",
        )
    # Manual top-ups and finished auto ones are not limited.
    TopUp.objects.create(organization=org, source="manual", amount=Decimal("10"), currency="USD")
    TopUp.objects.create(
        organization=org,
        source="auto",
        amount=Decimal("500"),
        currency="USD",
        crossing_key="c",
        status="succeeded",
    )
