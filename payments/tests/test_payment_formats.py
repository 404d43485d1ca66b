"""Payments and checkout write money as every other page does ('$100.00', not '100.00 USD'),
and a provider's message ending in a full stop is not given a second one."""

from __future__ import annotations

from decimal import Decimal

import pytest

from payments.models import Payment
from payments.tests.factories import make_open_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture
def portal(client, owner):
    client.force_login(owner)
    return client


def test_payments_and_checkout_write_money_with_the_symbol(portal, org):
    make_open_invoice(org, amount_due=Decimal("3089.65"))
    page = portal.get("/payments/").content.decode()
    assert "$3,089.65" in page and "3,089.65 USD" not in page
    assert "$25.00" in page and "25 USD" not in page  # the presets
    response = portal.post("/payments/top-up", {"amount": "100", "provider": "sandbox"})
    checkout = portal.get(response["Location"]).content.decode()
    assert "$100.00" in checkout and "100.00 USD" not in checkout
    detail = portal.get(f"/payments/{Payment.objects.get().pk}").content.decode()
    assert "$100.00" in detail and " UTC" in detail


def test_a_declined_sandbox_card_is_said_in_one_sentence(portal, org):
    portal.post("/payments/top-up", {"amount": "25", "provider": "sandbox"})
    payment = Payment.objects.get()
    portal.post(f"/payments/sandbox/checkout/{payment.pk}", {"outcome": "decline"})
    page = portal.get(f"/payments/{payment.pk}/return", follow=True).content.decode()
    assert "The payment failed: The sandbox card declined." in page
    assert "declined.." not in page
