"""Issue 13, findings 2 and 3: each provider's own currency rules, at the provider boundary,
and localised (Adaptive Pricing) Checkout Sessions recorded in our currency, once.

The fakes hold their own copy of each provider's rules (payments/tests/fakes.py), so a
mistake in the gateway's table shows up as a refusal from the fake, as it would from the
provider."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
import stripe

from accounts.models import AuditLog
from core.errors import DomainError
from core.money import known_currencies, minor_unit_exponent
from payments import services
from payments.gateways.base import GatewayUnavailable
from payments.models import Payment, PaymentStatus, Provider, Purpose, Refund
from payments.tests.conftest import return_urls
from payments.tests.factories import PaymentFactory
from payments.tests.fakes import paypal_amount_issue, stripe_amount_refusal

pytestmark = pytest.mark.django_db


def _checkout(org, amount: str, provider: str = Provider.STRIPE) -> Payment:
    return services.payment_start_checkout(organization=org, purpose=Purpose.TOPUP, provider=provider,
                                           amount=Decimal(amount), urls=return_urls)


def _deliver_all(events, deliver_stripe) -> None:
    for event in events:
        assert deliver_stripe(event).status_code == 200, event["type"]


def _in_currency(org, currency: str):
    org.currency = currency
    org.save(update_fields=["currency"])
    return org


# --- one table per provider, for every currency we accept -----------------------------------


def _amounts(currency: str) -> list[Decimal]:
    """A whole amount and one with the smallest fraction the currency has (ISO/CLDR)."""
    whole = Decimal(1000)
    places = minor_unit_exponent(currency)
    return [whole, whole + Decimal(1).scaleb(-places)] if places else [whole]


@pytest.mark.parametrize("currency", sorted(known_currencies()))
def test_every_currency_we_accept_goes_to_stripe_as_stripe_takes_it_or_is_refused_before(currency):
    from payments.gateways.currencies import ProviderAmountError, from_stripe_amount, stripe_amount

    for amount in _amounts(currency):
        try:
            units = stripe_amount(amount, currency)
        except ProviderAmountError as exc:
            # Refused here; Stripe (the fake, with its own copy of Stripe's rules) refuses too.
            assert exc.status_code == 422 and exc.message
            sent = int(amount.scaleb(3 if currency in ("BHD", "JOD", "KWD", "OMR", "TND") else 2))
            assert stripe_amount_refusal(sent, currency.lower()) is not None
            continue
        assert stripe_amount_refusal(units, currency.lower()) is None, (amount, currency, units)
        assert from_stripe_amount(units, currency.lower()) == amount  # read back as sent, to the unit


@pytest.mark.parametrize("currency", sorted(known_currencies()))
def test_every_currency_we_accept_goes_to_paypal_as_paypal_takes_it_or_is_refused_before(currency):
    from payments.gateways.currencies import ProviderAmountError, paypal_amount

    for amount in _amounts(currency):
        try:
            value = paypal_amount(amount, currency)
        except ProviderAmountError as exc:
            assert exc.status_code == 422 and exc.message
            assert paypal_amount_issue({"currency_code": currency, "value": f"{amount:f}"}) is not None
            continue
        assert paypal_amount_issue({"currency_code": currency, "value": value}) is None, (amount, currency, value)
        assert Decimal(value) == amount


# --- Stripe --------------------------------------------------------------------------------


def test_ten_thousand_isk_via_stripe_is_sent_as_1000000_and_credited_10000(org, fake_stripe, deliver_stripe,
                                                                           balance):
    org = _in_currency(org, "ISK")
    payment = _checkout(org, "10000")
    session = fake_stripe.objects[payment.provider_checkout_id]
    assert (session["amount_total"], session["currency"]) == (1_000_000, "isk")  # two decimals at Stripe, 00
    _deliver_all(fake_stripe.complete_checkout(payment.provider_checkout_id), deliver_stripe)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.amount == Decimal("10000")
    assert balance(org) == Decimal("10000")
    assert not AuditLog.objects.filter(action="payment.amount_mismatch").exists()


def test_an_isk_refund_is_sent_in_stripe_units(org, fake_stripe, deliver_stripe, balance,
                                               django_capture_on_commit_callbacks):
    org = _in_currency(org, "ISK")
    payment = _checkout(org, "10000")
    _deliver_all(fake_stripe.complete_checkout(payment.provider_checkout_id), deliver_stripe)
    payment.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        refund = services.refund_request(payment=payment, amount=Decimal("2500"), reason="Goodwill")
    sent = [o for o in fake_stripe.objects.values() if o["object"] == "refund"]
    assert [(r["amount"], r["currency"]) for r in sent] == [(250_000, "isk")]
    refund.refresh_from_db()
    assert refund.amount == Decimal("2500") and balance(org) == Decimal("7500")


def test_a_three_decimal_amount_whose_last_digit_is_not_zero_is_refused_before_any_call(org, fake_stripe):
    org = _in_currency(org, "KWD")
    with pytest.raises(DomainError) as refused:
        _checkout(org, "10.005")
    assert refused.value.status_code == 422 and "nearest ten" in refused.value.message
    assert fake_stripe.count("POST", "/v1/checkout/sessions") == 0 and Payment.objects.count() == 0
    payment = _checkout(org, "10.010")  # last digit 0: Stripe takes it
    assert fake_stripe.objects[payment.provider_checkout_id]["amount_total"] == 10010


def test_a_partial_refund_stripe_would_refuse_is_refused_before_the_call(org, fake_stripe):
    org = _in_currency(org, "KWD")
    payment = PaymentFactory(organization=org, provider=Provider.STRIPE, status=PaymentStatus.SUCCEEDED,
                             amount=Decimal("10.000"), provider_payment_id="pi_x")
    with pytest.raises(DomainError, match="nearest ten"):
        services.refund_request(payment=payment, amount=Decimal("1.005"), reason="Goodwill")
    assert Refund.objects.count() == 0 and fake_stripe.count("POST", "/v1/refunds") == 0


def test_an_amount_below_stripes_minimum_is_refused_before_any_call(org, fake_stripe, settings):
    settings.CREDITS_TOPUP_MIN = {"default": Decimal("0.10")}
    with pytest.raises(DomainError) as refused:
        _checkout(org, "0.49")
    assert refused.value.message == "Stripe charges at least $0.50."
    assert fake_stripe.count("POST", "/v1/checkout/sessions") == 0 and Payment.objects.count() == 0


def test_the_fake_stripe_refuses_what_stripe_refuses(fake_stripe):
    """Against the SDK: the fake answers Stripe's errors for amounts Stripe does not take."""
    sdk = stripe.StripeClient(fake_stripe.api_key, base_addresses={"api": fake_stripe.url})
    cases = [(1_000_050, "isk", "invalid_charge_amount_no_decimal_compatible"), (10_005, "kwd", None),
             (49, "usd", "amount_too_small"), (100_000_000, "usd", "amount_too_large"), (1000, "xxx", None)]
    for amount, currency, code in cases:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            sdk.v1.payment_intents.create({"amount": amount, "currency": currency})
        assert refused.value.code == code, (amount, currency)
        assert refused.value.param in ("amount", "currency")


# --- Adaptive Pricing (localised Checkout) ---------------------------------------------------


def test_checkout_sessions_carry_adaptive_pricing_disabled(org, fake_stripe, deliver_stripe, balance):
    """The fake's account has Adaptive Pricing on (the dashboard setting); our session
    turns it off, so the customer pays our price in our currency."""
    assert fake_stripe.adaptive_pricing_default is True
    payment = _checkout(org, "100.00")
    session = fake_stripe.objects[payment.provider_checkout_id]
    assert session["adaptive_pricing"] == {"enabled": False}
    _deliver_all(fake_stripe.complete_checkout(payment.provider_checkout_id), deliver_stripe)
    assert (session["currency"], session["amount_total"], session["currency_conversion"]) == ("usd", 10000, None)
    assert balance(org) == Decimal("100.00")


@pytest.mark.parametrize("intents", ["today: ours, presentment_details", "before 2025-03-31: the customer's"])
@pytest.mark.parametrize("order", ["as sent", "reversed"])
def test_a_localised_eur_session_for_a_usd_100_top_up_credits_usd_100_exactly_once(
        order, intents, org, fake_stripe, deliver_stripe, balance):
    """A session opened before sessions pinned the currency (or localised anyway): the
    customer paid EUR 93.50; Stripe reports it in `currency`/`amount_total` and ours in
    `currency_conversion`. The intent keeps USD and says EUR in `presentment_details`,
    or (older sessions) is in EUR itself."""
    legacy = intents.startswith("before")
    fake_stripe.localised_intents_in_presentment_currency = legacy
    payment = _checkout(org, "100.00")
    fake_stripe.objects[payment.provider_checkout_id]["adaptive_pricing"]["enabled"] = True
    events = fake_stripe.complete_checkout(payment.provider_checkout_id)
    completed = next(e for e in events if e["type"] == "checkout.session.completed")["data"]["object"]
    assert (completed["currency"], completed["amount_total"]) == ("eur", 9350)
    assert completed["currency_conversion"]["source_currency"] == "usd"
    succeeded = next(e for e in events if e["type"] == "payment_intent.succeeded")["data"]["object"]
    if legacy:
        assert (succeeded["currency"], succeeded["amount"]) == ("eur", 9350)
    else:
        assert (succeeded["currency"], succeeded["amount"]) == ("usd", 10000)
        assert succeeded["presentment_details"] == {"presentment_amount": 9350, "presentment_currency": "eur"}
    for _ in range(2):
        _deliver_all(events if order == "as sent" else list(reversed(events)), deliver_stripe)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.amount == Decimal("100.00")
    assert balance(org) == Decimal("100.00")
    assert not AuditLog.objects.filter(action="payment.amount_mismatch").exists()


def test_a_session_in_todays_shape_with_presentment_details_credits_our_amount(org, fake_stripe, deliver_stripe,
                                                                               balance):
    """Sessions localised since 2025-03-31 keep our currency in `currency` and the
    customer's in `presentment_details`."""
    payment = _checkout(org, "100.00")
    fake_stripe.objects[payment.provider_checkout_id]["adaptive_pricing"]["enabled"] = True
    events = fake_stripe.complete_checkout(payment.provider_checkout_id)
    event = copy.deepcopy(next(e for e in events if e["type"] == "checkout.session.completed"))
    session = event["data"]["object"]
    session.update(currency="usd", amount_total=10000, currency_conversion=None,
                   presentment_details={"presentment_amount": 9350, "presentment_currency": "eur"})
    assert deliver_stripe(event).status_code == 200
    assert balance(org) == Decimal("100.00")
    assert not AuditLog.objects.filter(action="payment.amount_mismatch").exists()


# --- PayPal ------------------------------------------------------------------------------------


def test_paypal_refuses_a_currency_it_does_not_take_before_any_call(org, fake_paypal):
    org = _in_currency(org, "ISK")
    with pytest.raises(DomainError) as refused:
        _checkout(org, "5000", Provider.PAYPAL)
    assert refused.value.message == "PayPal does not take payments in ISK."
    assert fake_paypal.count("POST", "/v2/checkout/orders") == 0 and Payment.objects.count() == 0


def test_paypal_takes_huf_in_whole_forints_and_refuses_fillér(org, fake_paypal, settings):
    org = _in_currency(org, "HUF")
    payment = _checkout(org, "5000.00", Provider.PAYPAL)
    assert fake_paypal.orders[payment.provider_checkout_id]["purchase_units"][0]["amount"] == {
        "currency_code": "HUF", "value": "5000"}
    with pytest.raises(DomainError, match="whole units"):
        _checkout(org, "5000.50", Provider.PAYPAL)
    assert fake_paypal.count("POST", "/v2/checkout/orders") == 1


def test_the_portal_shows_the_providers_refusal_as_a_form_message(client, owner, org, fake_paypal):
    org = _in_currency(org, "ISK")
    client.force_login(owner)
    response = client.post("/payments/top-up", {"amount": "5000", "provider": "paypal"}, follow=True)
    assert "PayPal does not take payments in ISK." in response.content.decode()
    assert Payment.objects.count() == 0 and fake_paypal.count("POST", "/v2/checkout/orders") == 0


# --- issue 13, finding 6: sessions without their page; setup sessions need a currency ---------


def test_a_checkout_session_without_its_page_is_provider_unavailable(org, fake_stripe):
    fake_stripe.omit_session_url = True
    with pytest.raises(GatewayUnavailable):
        _checkout(org, "50.00")
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.PENDING and payment.checkout_url == ""


def test_a_setup_session_sends_the_currency_stripe_requires(org, fake_stripe):
    from payments.gateways.stripe_gateway import StripeGateway

    started = StripeGateway().start_setup(org, success_url="https://x/ok", cancel_url="https://x/no")
    assert fake_stripe.objects[started.checkout_id]["currency"] == "usd"
    sdk = stripe.StripeClient(fake_stripe.api_key, base_addresses={"api": fake_stripe.url})
    with pytest.raises(stripe.InvalidRequestError) as refused:  # what Stripe answers without it
        sdk.v1.checkout.sessions.create({"mode": "setup", "success_url": "https://x/ok"})
    assert refused.value.param == "currency"


# --- off-session charges and the API ------------------------------------------------------


def test_an_auto_top_up_stripe_cannot_charge_fails_at_once_without_a_call(org, fake_stripe, stripe_card):
    from credits import services as credits
    from credits.models import TopUp
    from payments.card_topups import charge_topup

    org = _in_currency(org, "KWD")
    stripe_card(org)
    topup = TopUp.objects.create(organization=org, source="auto", amount=Decimal("10.005"), currency="KWD")
    topup = credits.topup_begin_attempt(topup_id=topup.pk)
    charge_topup(topup.pk)
    topup.refresh_from_db()
    assert topup.status == "abandoned" and Payment.objects.count() == 0  # not retried: no retry helps
    assert fake_stripe.count("POST", "/v1/payment_intents") == 0


def test_a_refund_the_provider_would_refuse_is_a_422_in_the_api(org, platform_api, fake_stripe):
    org = _in_currency(org, "KWD")
    payment = PaymentFactory(organization=org, provider=Provider.STRIPE, status=PaymentStatus.SUCCEEDED,
                             amount=Decimal("10.000"), provider_payment_id="pi_x")
    response = platform_api.post(f"/api/v1/payments/{payment.pk}/refund", {"amount": "1.005", "reason": "x"},
                                 format="json", HTTP_IDEMPOTENCY_KEY="refund-kwd")
    assert response.status_code == 422 and response.json()["error"]["code"] == "amount_not_accepted"
    assert Refund.objects.count() == 0 and fake_stripe.count("POST", "/v1/refunds") == 0
