"""One top-up flow (issue 16, defect 3): one form class with one minimum per currency, a
field error that says what is wrong, a confirmation naming the saved card before it is
charged, honest labels, and abandoned checkouts that do not pile up."""

from __future__ import annotations

from decimal import Decimal

import pytest

from credits.models import TopUp, TopUpSource
from payments.models import Flow, Payment, PaymentMethod, PaymentStatus, Provider, Purpose
from payments.tests.factories import PaymentFactory, PaymentMethodFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def portal(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def card(org) -> PaymentMethod:
    return PaymentMethodFactory(organization=org, brand="Sandbox Visa", last4="4242")


@pytest.mark.parametrize("amount,error", [
    ("-5", "Enter an amount of at least $5.00."),
    ("0", "Enter an amount of at least $5.00."),
    ("0.01", "Enter an amount of at least $5.00."),
    ("4.99", "Enter an amount of at least $5.00."),
    ("abc", "Enter a number like 50 or 50.00."),
    ("", "Enter an amount, e.g. 50.00."),
    ("1e3", "Enter a number like 50 or 50.00."),
    ("１００", "Enter a number like 50 or 50.00."),  # full-width digits
    ("50.001", "Enter at most 2 decimal places."),
    ("100000.01", "Enter an amount of at most $100,000.00."),
])
@pytest.mark.parametrize("provider", ["sandbox", "saved_card"])
def test_a_bad_amount_gets_a_field_error_that_says_what_is_wrong(portal, card, amount, error, provider):
    response = portal.post("/payments/top-up", {"amount": amount, "provider": provider, "request_key": "k"})
    assert response.status_code == 400
    assert response.context["form"].errors["amount"] == [error]
    page = response.content.decode()
    assert error in page and "Choose an amount and how to pay." not in page
    assert 'aria-invalid="true"' in page
    assert not Payment.objects.exists() and not TopUp.objects.exists()


def test_the_browser_is_given_no_rule_of_its_own_and_is_told_the_minimum(portal):
    page = portal.get("/payments/top-up").content.decode()
    assert 'inputmode="decimal"' in page and 'min="0.01"' not in page and 'type="number"' not in page
    assert "At least $5.00." in page


def test_an_amount_from_the_credits_page_is_checked_at_once(portal):
    response = portal.get("/payments/top-up", {"amount": "abc"})
    assert response.status_code == 200
    assert response.context["form"].errors["amount"] == ["Enter a number like 50 or 50.00."]


def test_the_minimum_is_one_setting_per_currency_and_the_api_says_the_same(org, org_api, settings):
    settings.CREDITS_TOPUP_MIN = {"default": Decimal("5"), "JPY": Decimal("500")}
    response = org_api.post("/api/v1/credits/topups", {"amount": "1.00"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["amount"] == ["Enter an amount of at least $5.00."]
    org.currency = "JPY"
    org.save()
    response = org_api.post("/api/v1/credits/topups", {"amount": "499"}, format="json")
    assert response.json()["error"]["fields"]["amount"] == ["Enter an amount of at least ¥500."]
    assert not TopUp.objects.exists()


def test_the_checkout_top_up_and_the_saved_card_top_up_share_the_minimum(portal, card):
    from core.errors import DomainError
    from payments import services

    with pytest.raises(DomainError, match=r"at least \$5\.00"):
        services.payment_create(organization=card.organization, purpose=Purpose.TOPUP, provider=Provider.SANDBOX,
                                amount=Decimal("4.99"))
    checkout = portal.post("/payments/top-up", {"amount": "5.00", "provider": "sandbox"})
    assert checkout.status_code == 302 and checkout["Location"].startswith("/payments/sandbox/checkout/")
    confirmation = portal.post("/payments/top-up", {"amount": "5.00", "provider": "saved_card", "request_key": "k5"})
    assert confirmation.status_code == 200 and "Charge $5.00 to Sandbox Visa ····4242" in confirmation.content.decode()


def test_the_saved_card_is_charged_only_after_a_confirmation_naming_it(portal, org, card,
                                                                     django_capture_on_commit_callbacks):
    response = portal.post("/payments/top-up", {"amount": "50", "provider": "saved_card", "request_key": "form-1"})
    page = response.content.decode()
    assert response.status_code == 200 and "Confirm your top-up" in page
    assert "····4242" in page and "Sandbox Visa" in page and "$50.00" in page
    assert not TopUp.objects.exists() and not Payment.objects.exists()  # nothing charged yet

    confirm = {"amount": "50", "provider": "saved_card", "request_key": "form-1", "confirm_card": str(card.pk)}
    with django_capture_on_commit_callbacks(execute=True):
        response = portal.post("/payments/top-up", confirm)
        portal.post("/payments/top-up", confirm)  # a double click on "Charge"
    assert response.status_code == 302 and response["Location"] == "/credits/"
    topup = TopUp.objects.get()
    assert (topup.status, topup.amount, topup.source) == ("succeeded", Decimal("50"), TopUpSource.MANUAL)
    payment = Payment.objects.get()
    assert (payment.flow, payment.payment_method, payment.status) == (Flow.OFF_SESSION, card, PaymentStatus.SUCCEEDED)


def test_a_confirmation_for_a_card_that_is_no_longer_the_default_charges_nothing(portal, org, card):
    other = PaymentMethodFactory(organization=org, brand="Sandbox Visa", last4="1881", is_default=False)
    PaymentMethod.objects.filter(pk=card.pk).update(is_default=False)
    PaymentMethod.objects.filter(pk=other.pk).update(is_default=True)
    response = portal.post("/payments/top-up", {"amount": "50", "provider": "saved_card", "request_key": "k",
                                                "confirm_card": str(card.pk)})
    page = response.content.decode()
    assert "Your default card changed" in page and "····1881" in page
    assert not TopUp.objects.exists()


def test_a_viewer_can_neither_open_nor_post_the_top_up(client, org, make_member, card):
    client.force_login(make_member(org, "viewer").user)
    assert client.get("/payments/top-up").status_code == 403
    assert client.post("/payments/top-up", {"amount": "40", "provider": "saved_card",
                                            "confirm_card": str(card.pk)}).status_code == 403
    assert not TopUp.objects.exists()


def test_top_ups_are_labelled_manual_api_or_automatic(portal, org, card, org_api, django_capture_on_commit_callbacks):
    from credits.models import AutoTopUpSettings
    from credits.services import auto_topup_check, ledger_post

    with django_capture_on_commit_callbacks(execute=True):
        portal.post("/payments/top-up", {"amount": "30", "provider": "saved_card", "request_key": "a",
                                         "confirm_card": str(card.pk)})
        org_api.post("/api/v1/credits/topups", {"amount": "40.00"}, format="json")
        AutoTopUpSettings.objects.create(organization=org, enabled=True, threshold=Decimal("100"),
                                         amount=Decimal("60"))
        ledger_post(organization=org, amount=Decimal("-80"), kind="usage", reason="usage", reference="u1")
        auto_topup_check(organization_id=org.pk, currency=org.currency)
    PaymentFactory(organization=org, status=PaymentStatus.SUCCEEDED, amount=Decimal("25.00"))  # a hosted checkout
    assert sorted(t.origin_label for t in TopUp.objects.all()) == ["API top-up", "Automatic top-up", "Manual top-up"]
    page = portal.get("/payments/").content.decode()
    history = page[page.index("Payment history"):page.index('id="receipts"')]
    assert history.count("Automatic top-up") == 1 and history.count("API top-up") == 1
    assert history.count("Manual top-up <span class=\"muted\">(saved card)</span>") == 1
    assert history.count("Manual top-up") == 2 and "(automatic)" not in history
    credits_page = portal.get("/credits/").content.decode()
    assert "Automatic top-up" in credits_page and "API top-up" in credits_page and "Manual top-up" in credits_page


def test_abandoned_top_up_checkouts_do_not_pile_up(portal, org):
    for amount in ("40", "40", "60"):  # three tries; the customer left the first two
        response = portal.post("/payments/top-up", {"amount": amount, "provider": "sandbox"})
        assert response.status_code == 302
    statuses = list(Payment.objects.order_by("id").values_list("status", flat=True))
    assert statuses == [PaymentStatus.CANCELED, PaymentStatus.CANCELED, PaymentStatus.REQUIRES_ACTION]
    page = portal.get("/payments/").content.decode()
    assert page.count("awaiting customer") == 1
    first = Payment.objects.order_by("id").first()
    portal.post(f"/payments/sandbox/checkout/{first.pk}", {"outcome": "pay"})  # the old tab cannot pay any more
    first.refresh_from_db()
    assert first.status == PaymentStatus.CANCELED
