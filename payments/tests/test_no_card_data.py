"""Card numbers never touch our servers: no model, form or serializer has a place for
one, and nothing logged holds one (each payments test also scans its own logs, see
conftest.no_card_numbers_logged)."""

from __future__ import annotations

import logging
import re

import pytest
from django.apps import apps

from credits.forms import TopUpForm
from payments import forms as payment_forms
from payments.api import serializers as payment_serializers
from payments.tests.conftest import card_numbers_in

CARD_FIELD = re.compile(r"(card_?number|^pan$|^cvc$|^cvv|security_code|^number$)", re.I)
FORMS = [TopUpForm, payment_forms.InvoicePaymentForm, payment_forms.SandboxCardForm]
SERIALIZERS = [payment_serializers.PaymentSerializer, payment_serializers.RefundSerializer,
               payment_serializers.RefundCreateSerializer]


def test_the_detector_finds_card_numbers_and_ignores_other_digits():
    assert card_numbers_in("charged 4242 4242 4242 4242 ok") == ["4242424242424242"]
    assert card_numbers_in("5555-5555-5555-4444") == ["5555555555554444"]
    assert card_numbers_in("pi_000123 amount 5000 order 1234567890123") == []


def test_no_fake_provider_id_can_pass_for_a_card_number():
    """A fake's id once held 16 digits in a row that passed Luhn (`cus_0001320250369494`), and
    the debug-log scan below failed one CI run in a few hundred."""
    from payments.tests.fakes import _id

    ids = " ".join(_id("cus") for _ in range(5000))
    assert not re.search(r"\d{13}", ids)


def test_no_payments_model_has_a_field_for_a_card_number():
    for model in apps.get_app_config("payments").get_models():
        names = [f.name for f in model._meta.get_fields()]
        assert not [n for n in names if CARD_FIELD.search(n)], model


@pytest.mark.parametrize("form", FORMS)
def test_no_form_asks_for_a_card_number(form):
    fields = (form(currency="USD", pay_with=[("sandbox", "Sandbox")]).fields if form is TopUpForm
              else form().fields if form is payment_forms.SandboxCardForm else form(providers=["sandbox"]).fields)
    assert not [n for n in fields if CARD_FIELD.search(n)]


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_no_serializer_carries_a_card_number(serializer):
    assert not [n for n in serializer().fields if CARD_FIELD.search(n)]


@pytest.mark.django_db
def test_a_full_stripe_flow_logged_at_debug_holds_no_card_number(org, fake_stripe, deliver_stripe, caplog):
    from decimal import Decimal

    from payments import services
    from payments.models import Provider, Purpose

    caplog.set_level(logging.DEBUG)
    payment = services.payment_start_checkout(
        organization=org, purpose=Purpose.TOPUP, provider=Provider.STRIPE, amount=Decimal("12.34"),
        urls=lambda p: ("https://portal.example/ok", "https://portal.example/no"))
    for event in fake_stripe.complete_checkout(payment.provider_checkout_id):
        deliver_stripe(event)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "api.stripe" in logged or "127.0.0.1" in logged  # the SDK's request log was captured
    assert card_numbers_in(logged) == []
