"""The Payments page and the sandbox's hosted pages: the money loop clicked through."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from accounts.models import AuditLog
from payments.models import Payment, PaymentMethod, PaymentStatus, Provider
from payments.tests.factories import PaymentFactory, PaymentMethodFactory, make_open_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture
def portal(client, owner):
    client.force_login(owner)
    return client


def test_the_page_labels_the_sandbox_and_offers_presets(portal, org):
    page = portal.get("/payments/").content.decode()
    assert "Sandbox — no real money" in page
    for preset in ("$25.00", "$50.00", "$100.00", "$250.00"):
        assert preset in page
    assert 'name="provider" value="sandbox"' in page


def test_with_real_providers_the_sandbox_is_gone(portal, fake_stripe, fake_paypal):
    page = portal.get("/payments/").content.decode()
    assert "Sandbox — no real money" not in page
    assert 'value="stripe"' in page and 'value="paypal"' in page
    assert portal.get("/payments/sandbox/add-card").status_code == 404


def test_a_sandbox_top_up_raises_the_balance_once(portal, org, balance):
    response = portal.post("/payments/top-up", {"amount": "40.00", "provider": "sandbox"})
    payment = Payment.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/payments/sandbox/checkout/{payment.pk}"
    checkout = portal.get(response["Location"]).content.decode()
    assert "Sandbox — no real money" in checkout and "$40.00" in checkout
    portal.post(response["Location"], {"outcome": "pay"})
    portal.post(response["Location"], {"outcome": "pay"})  # a double click
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert balance(org) == Decimal("40.00")
    assert "Payment received" in portal.get(f"/payments/{payment.pk}/return", follow=True).content.decode()


def test_a_declined_sandbox_checkout_can_be_paid_on_a_second_try(portal, org, balance):
    portal.post("/payments/top-up", {"amount": "25", "provider": "sandbox"})
    payment = Payment.objects.get()
    portal.post(f"/payments/sandbox/checkout/{payment.pk}", {"outcome": "decline"})
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED and balance(org) == Decimal("0")
    portal.post(f"/payments/sandbox/checkout/{payment.pk}", {"outcome": "pay"})
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and balance(org) == Decimal("25.00")


def test_a_top_up_below_the_minimum_is_refused_with_a_message(portal):
    response = portal.post("/payments/top-up", {"amount": "1.00", "provider": "sandbox"})
    assert response.status_code == 400
    assert "Enter an amount of at least $5.00." in response.content.decode()
    assert Payment.objects.count() == 0


def test_an_open_invoice_is_paid_in_part_then_in_full(portal, org):
    invoice = make_open_invoice(org, amount_due=Decimal("100.00"))
    page = portal.get("/payments/").content.decode()
    assert invoice.number in page and "$100.00" in page
    for amount in ("30.00", "70.00"):
        response = portal.post(f"/payments/invoices/{invoice.pk}/pay", {"amount": amount, "provider": "sandbox"})
        portal.post(response["Location"], {"outcome": "pay"})
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", Decimal("100.00"))


def test_paying_more_than_is_open_is_refused(portal, org):
    invoice = make_open_invoice(org, amount_due=Decimal("100.00"))
    response = portal.post(f"/payments/invoices/{invoice.pk}/pay", {"amount": "100.01", "provider": "sandbox"},
                           follow=True)
    assert "At most $100.00 is still open on this invoice." in response.content.decode()


def test_sandbox_cards_are_added_made_default_and_removed(portal, org):
    assert portal.post("/payments/methods/add")["Location"] == "/payments/sandbox/add-card"
    portal.post("/payments/sandbox/add-card", {"card": "ok"})
    portal.post("/payments/sandbox/add-card", {"card": "declining"})
    first, second = PaymentMethod.objects.order_by("id")
    assert first.is_default and not second.is_default and second.last4 == "0341"
    portal.post(f"/payments/methods/{second.pk}/default")
    portal.post(f"/payments/methods/{second.pk}/remove")
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.is_default and second.detached_at is not None
    assert AuditLog.objects.filter(action__startswith="payment_method.").count() == 4


def test_a_viewer_sees_the_history_but_cannot_pay(client, org, make_member):
    client.force_login(make_member(org, "viewer").user)
    PaymentFactory(organization=org, status=PaymentStatus.SUCCEEDED)
    page = client.get("/payments/").content.decode()
    assert "cannot" not in page and "$50.00" in page and 'action="/payments/top-up"' not in page
    assert client.post("/payments/top-up", {"amount": "40", "provider": "sandbox"}).status_code == 403


def test_the_stripe_checkout_redirects_to_stripe(portal, fake_stripe):
    response = portal.post("/payments/top-up", {"amount": "40.00", "provider": "stripe"})
    assert re.fullmatch(r"https://checkout\.stripe\.com/c/pay/cs_test_\w+", response["Location"])


def test_the_dashboard_card_shows_the_default_card_and_the_sandbox(org, rf):
    from django.template.loader import render_to_string

    from payments.cards import payments_card

    PaymentMethodFactory(organization=org, provider=Provider.SANDBOX, last4="4242")
    card = payments_card(rf.get("/"), org)
    html = render_to_string(card["template"], {"card": card})
    assert "····4242" in html and "Sandbox — no real money" in html


def test_a_card_is_saved_through_stripes_hosted_page_on_return(portal, org, fake_stripe):
    response = portal.post("/payments/methods/add")
    session_id = response["Location"].rsplit("/", 1)[1]
    session = fake_stripe.objects[session_id]
    assert session["mode"] == "setup" and session["success_url"].endswith("?session_id={CHECKOUT_SESSION_ID}")
    fake_stripe.complete_checkout(session_id)
    page = portal.get(f"/payments/methods/added?session_id={session_id}", follow=True).content.decode()
    assert "Card saved." in page
    method = PaymentMethod.objects.get()
    assert (method.organization, method.provider, method.last4, method.is_default) == (org, "stripe", "4242", True)


def test_another_organisations_setup_session_saves_nothing(portal, other_org, fake_stripe):
    from payments.gateways.stripe_gateway import StripeGateway

    started = StripeGateway().start_setup(other_org, success_url="https://x/ok", cancel_url="https://x/no")
    fake_stripe.complete_checkout(started.checkout_id)
    assert portal.get(f"/payments/methods/added?session_id={started.checkout_id}").status_code == 404
    assert PaymentMethod.objects.count() == 0


@pytest.mark.parametrize("amount", ["١٠", "1E+2", "１０", "10,5", "0x10"])
def test_the_top_up_form_refuses_amounts_outside_the_pattern(amount):
    from credits.forms import TopUpForm

    form = TopUpForm({"amount": amount, "provider": "sandbox"}, currency="USD", pay_with=[("sandbox", "Sandbox")])
    assert not form.is_valid() and form.errors["amount"] == ["Enter a number like 50 or 50.00."]


def test_the_top_up_form_takes_plain_digits():
    from credits.forms import TopUpForm

    form = TopUpForm({"amount": "10.50", "provider": "sandbox"}, currency="USD", pay_with=[("sandbox", "Sandbox")])
    assert form.is_valid(), form.errors
