"""Fixtures for payments tests: the fake providers, signed webhook delivery, and a scan
of everything logged during each test for card numbers."""

from __future__ import annotations

import json
import logging
import re
import time
from decimal import Decimal

import pytest
import stripe
from django.test import Client

from payments.tests.fakes import FakePayPal, FakeStripe
from payments.tests.provider_contract import specs_dir

STRIPE_WEBHOOK_SECRET = "whsec_test_secret"
CARD_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ -]?){13,19}(?!\d)")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_numbers_in(text: str) -> list[str]:
    """Luhn-valid runs of 13 to 19 digits (spaces or dashes allowed between them)."""
    found = []
    for match in CARD_CANDIDATE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn_valid(digits):
            found.append(digits)
    return found


@pytest.fixture(autouse=True)
def no_card_numbers_logged(caplog):
    """Every payments test also proves it logged no card number, at any level."""
    caplog.set_level(logging.DEBUG)
    yield
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert card_numbers_in(logged) == [], "a card number was logged"


@pytest.fixture
def fake_stripe(settings):
    specs_dir()  # the fake checks every exchange against Stripe's descriptions; skips without them
    fake = FakeStripe().start()
    settings.STRIPE_SECRET_KEY = fake.api_key
    settings.STRIPE_API_BASE = fake.url
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_WEBHOOK_SECRET
    settings.PAYMENTS_PROVIDER_TIMEOUT = 2
    settings.PAYMENTS_PROVIDER_MAX_RETRIES = 0
    yield fake
    fake.stop()
    assert fake.violations == [], "the fake Stripe answered as Stripe never would (provider_contract)"


@pytest.fixture
def fake_paypal(settings):
    specs_dir()  # the fake checks every exchange against PayPal's descriptions; skips without them
    fake = FakePayPal().start()
    settings.PAYPAL_CLIENT_ID = fake.client_id
    settings.PAYPAL_CLIENT_SECRET = fake.client_secret
    settings.PAYPAL_WEBHOOK_ID = fake.webhook_id
    settings.PAYPAL_API_BASE = fake.url
    settings.PAYMENTS_PROVIDER_TIMEOUT = 2
    yield fake
    fake.stop()
    assert fake.violations == [], "the fake PayPal answered as PayPal never would (provider_contract)"


def stripe_body(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def stripe_signature(body: bytes, *, secret: str = STRIPE_WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """Stripe's real scheme: `t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<body>">`."""
    return stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=timestamp)


@pytest.fixture
def deliver_stripe():
    def deliver(event: dict, *, body: bytes | None = None, signature: str | None = None, client: Client | None = None):
        body = body if body is not None else stripe_body(event)
        signature = signature if signature is not None else stripe_signature(body)
        return (client or Client(enforce_csrf_checks=True)).post(
            "/payments/webhooks/stripe", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature)

    return deliver


@pytest.fixture
def deliver_paypal(fake_paypal):
    def deliver(event: dict, *, body: bytes | None = None, headers: dict | None = None, **sign_kwargs):
        body = body if body is not None else json.dumps(event).encode()
        headers = headers if headers is not None else fake_paypal.sign(body, **sign_kwargs)
        extra = {f"HTTP_{k.replace('-', '_')}": v for k, v in headers.items()}
        return Client(enforce_csrf_checks=True).post("/payments/webhooks/paypal", data=body,
                                                     content_type="application/json", **extra)

    return deliver


@pytest.fixture
def balance():
    """The organisation's credit balance, from the ledger."""
    from credits.models import LedgerEntry

    def _balance(organization) -> Decimal:
        return sum((e.amount for e in LedgerEntry.objects.filter(organization=organization)), Decimal("0"))

    return _balance


def wait_for(predicate, timeout: float = 5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def stripe_card(fake_stripe):
    """stripe_card(org, declines=False): a card saved at the fake Stripe and here."""

    def _card(organization, *, declines: bool = False):
        from payments import services
        from payments.gateways.stripe_gateway import StripeGateway
        from payments.models import Provider

        customer = StripeGateway().customer_id(organization)
        pm = fake_stripe.make_card(customer=customer, declines=declines)
        return services.payment_method_save(organization=organization, provider=Provider.STRIPE,
                                            saved=StripeGateway().saved_method(pm["id"]))

    return _card


@pytest.fixture
def staff_user(db):
    from django.contrib.auth.models import Group

    from accounts.staff import BILLING_ADMIN
    from accounts.tests.factories import UserFactory

    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=BILLING_ADMIN))
    return user


def return_urls(payment) -> tuple[str, str]:
    """The (success, cancel) addresses a portal checkout would give the provider."""
    return f"https://portal.example/payments/{payment.pk}/return", "https://portal.example/payments/"
