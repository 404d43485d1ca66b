"""Every call the project makes to Stripe and PayPal, checked against their descriptions.

The gateways are scanned for provider calls; each must have a row in `PROVIDER_CALLS`
and a scenario that makes it through our code against the fakes, where the fake checks
the request against the provider's published description (provider_contract) and the
fixtures fail the test on any answer the provider would never give. A new call without
a row fails `test_every_provider_call_in_the_gateways_has_a_row`.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.errors import DomainError
from payments import services
from payments.gateways.paypal_gateway import PayPalGateway
from payments.gateways.stripe_gateway import StripeGateway, client
from payments.models import Flow, Payment, Provider, Purpose, Refund
from payments.tests import provider_contract
from payments.tests.conftest import return_urls

pytestmark = pytest.mark.django_db

GATEWAYS = Path(__file__).resolve().parents[1] / "gateways"


@dataclass(frozen=True)
class Call:
    provider: str
    method: str
    path: str  # a regular expression over the request path
    checked_by: str  # the description the fake checks it against
    scenario: str  # the function below that makes the call through our code


PROVIDER_CALLS: dict[str, Call] = {
    "stripe v1.customers.create": Call("stripe", "POST", r"/v1/customers", "stripe.params.CustomerCreateParams",
                                       "stripe_customer"),
    "stripe v1.checkout.sessions.create": Call(
        "stripe", "POST", r"/v1/checkout/sessions", "stripe.params.SessionCreateParams", "stripe_checkout"),
    "stripe v1.checkout.sessions.retrieve": Call(
        "stripe", "GET", r"/v1/checkout/sessions/cs_[^/]+", "stripe.params.SessionRetrieveParams",
        "stripe_checkout_snapshot"),
    "stripe v1.checkout.sessions.expire": Call(
        "stripe", "POST", r"/v1/checkout/sessions/cs_[^/]+/expire", "stripe.params.SessionExpireParams",
        "stripe_checkout_expire"),
    "stripe v1.setup_intents.retrieve": Call(
        "stripe", "GET", r"/v1/setup_intents/seti_[^/]+", "stripe.params.SetupIntentRetrieveParams", "stripe_setup"),
    "stripe v1.payment_methods.retrieve": Call(
        "stripe", "GET", r"/v1/payment_methods/pm_[^/]+", "stripe.params.PaymentMethodRetrieveParams",
        "stripe_saved_card"),
    "stripe v1.payment_methods.detach": Call(
        "stripe", "POST", r"/v1/payment_methods/pm_[^/]+/detach", "stripe.params.PaymentMethodDetachParams",
        "stripe_detach"),
    "stripe v1.payment_intents.create": Call(
        "stripe", "POST", r"/v1/payment_intents", "stripe.params.PaymentIntentCreateParams", "stripe_charge"),
    "stripe v1.payment_intents.confirm": Call(
        "stripe", "POST", r"/v1/payment_intents/pi_[^/]+/confirm", "stripe.params.PaymentIntentConfirmParams",
        "stripe_confirm_on_session"),
    "stripe v1.payment_intents.retrieve": Call(
        "stripe", "GET", r"/v1/payment_intents/pi_[^/]+", "stripe.params.PaymentIntentRetrieveParams",
        "stripe_intent_snapshot"),
    "stripe v1.refunds.create": Call("stripe", "POST", r"/v1/refunds", "stripe.params.RefundCreateParams",
                                     "stripe_refund"),
    "stripe v1.refunds.retrieve": Call("stripe", "GET", r"/v1/refunds/re_[^/]+", "stripe.params.RefundRetrieveParams",
                                       "stripe_refund_lookup"),
    "stripe v1.refunds.list": Call("stripe", "GET", r"/v1/refunds", "stripe.params.RefundListParams",
                                   "stripe_refunds_of_charge"),
    "stripe v1.events.list": Call("stripe", "GET", r"/v1/events", "stripe.params.EventListParams", "stripe_events"),
    "paypal orders.create_order": Call(
        "paypal", "POST", r"/v2/checkout/orders", "POST /v2/checkout/orders (checkout_orders_v2.json)",
        "paypal_checkout"),
    "paypal orders.capture_order": Call(
        "paypal", "POST", r"/v2/checkout/orders/[^/]+/capture",
        "POST /v2/checkout/orders/{id}/capture (checkout_orders_v2.json)", "paypal_capture"),
    "paypal orders.get_order": Call(
        "paypal", "GET", r"/v2/checkout/orders/[^/]+", "GET /v2/checkout/orders/{id} (checkout_orders_v2.json)",
        "paypal_order_snapshot"),
    "paypal payments.refund_captured_payment": Call(
        "paypal", "POST", r"/v2/payments/captures/[^/]+/refund",
        "POST /v2/payments/captures/{capture_id}/refund (payments_payment_v2.json)", "paypal_refund"),
    "paypal payments.get_refund": Call(
        "paypal", "GET", r"/v2/payments/refunds/[^/]+", "GET /v2/payments/refunds/{refund_id} (payments_payment_v2.json)",
        "paypal_refund_lookup"),
    "paypal POST /v1/notifications/verify-webhook-signature": Call(
        "paypal", "POST", r"/v1/notifications/verify-webhook-signature",
        "POST /v1/notifications/verify-webhook-signature (notifications_webhooks_v1.json)", "paypal_verify"),
}
# PayPal's OAuth token call (`client().oauth_2`, POST /v1/oauth2/token) is in none of the
# four published documents under ../shared/specs/paypal: the SDK makes it, the fake
# checks its credentials, and nothing here can check its shape.
UNDESCRIBED = {"paypal oauth_2"}


def _chain(node: ast.AST) -> list[str] | None:
    """`client().a.b.c` → ["a", "b", "c"]; None for anything not rooted at client()."""
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "client" and names:
        return list(reversed(names))
    return None


def provider_calls_in_gateways() -> set[str]:
    found = set()
    for provider, name in (("stripe", "stripe_gateway.py"), ("paypal", "paypal_gateway.py")):
        tree = ast.parse((GATEWAYS / name).read_text())
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        for node in ast.walk(tree):
            chain = _chain(node) if isinstance(node, ast.Attribute) else None
            if chain and not isinstance(parents.get(node), ast.Attribute):  # the longest chain only
                found.add(f"{provider} {'.'.join(chain)}")
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
                for path in re.findall(r"(/v\d+/[\w/-]+)", text):
                    found.add(f"{provider} POST {path}")
    return found


def test_every_provider_call_in_the_gateways_has_a_row():
    found = provider_calls_in_gateways()
    assert found - set(PROVIDER_CALLS) - UNDESCRIBED == set(), "a provider call without its contract row"
    assert set(PROVIDER_CALLS) - found == set(), "a row for a call the gateways no longer make"


# --- scenarios: each makes its call through our own code -------------------------------


def _stripe_payment(org) -> Payment:
    return services.payment_start_checkout(organization=org, purpose=Purpose.TOPUP, provider=Provider.STRIPE,
                                           amount=Decimal("60.00"), urls=return_urls)


def _stripe_paid(org, fake_stripe) -> Payment:
    payment = _stripe_payment(org)
    fake_stripe.complete_checkout(payment.provider_checkout_id)
    session = fake_stripe.objects[payment.provider_checkout_id]
    Payment.objects.filter(pk=payment.pk).update(provider_payment_id=session["payment_intent"])
    payment.refresh_from_db()
    return payment


def stripe_customer(org, fake_stripe, fake_paypal, stripe_card) -> None:
    StripeGateway().customer_id(org)


def stripe_checkout(org, fake_stripe, fake_paypal, stripe_card) -> None:
    _stripe_payment(org)
    StripeGateway().start_setup(org, success_url="https://portal.example/ok", cancel_url="https://portal.example/no")


def stripe_checkout_snapshot(org, fake_stripe, fake_paypal, stripe_card) -> None:
    StripeGateway().snapshot(_stripe_payment(org))


def stripe_checkout_expire(org, fake_stripe, fake_paypal, stripe_card) -> None:
    _stripe_payment(org)
    _stripe_payment(org)  # a new top-up checkout supersedes the unfinished one: its session is expired


def stripe_setup(org, fake_stripe, fake_paypal, stripe_card) -> None:
    started = StripeGateway().start_setup(org, success_url="https://portal.example/ok",
                                          cancel_url="https://portal.example/no")
    fake_stripe.complete_checkout(started.checkout_id)
    StripeGateway().saved_method_from_setup_intent(fake_stripe.objects[started.checkout_id]["setup_intent"])


def stripe_saved_card(org, fake_stripe, fake_paypal, stripe_card) -> None:
    stripe_card(org)


def stripe_detach(org, fake_stripe, fake_paypal, stripe_card) -> None:
    StripeGateway().detach(stripe_card(org))


def stripe_charge(org, fake_stripe, fake_paypal, stripe_card) -> None:
    method = stripe_card(org)
    payment = services.payment_create(organization=org, purpose=Purpose.TOPUP, provider=Provider.STRIPE,
                                      amount=Decimal("25.00"), flow=Flow.OFF_SESSION, payment_method=method)
    StripeGateway().charge_saved_method(payment)


def stripe_confirm_on_session(org, fake_stripe, fake_paypal, stripe_card) -> None:
    from payments.models import PaymentStatus

    customer = StripeGateway().customer_id(org)
    pm = fake_stripe.make_card(customer=customer, requires_authentication=True)
    method = services.payment_method_save(organization=org, provider=Provider.STRIPE,
                                          saved=StripeGateway().saved_method(pm["id"]))
    payment = services.payment_create(organization=org, purpose=Purpose.TOPUP, provider=Provider.STRIPE,
                                      amount=Decimal("25.00"), flow=Flow.OFF_SESSION, payment_method=method)
    snapshot = StripeGateway().charge_saved_method(payment)
    assert snapshot.status == PaymentStatus.REQUIRES_ACTION  # the bank holds it for the cardholder
    Payment.objects.filter(pk=payment.pk).update(provider_payment_id=snapshot.provider_payment_id)
    payment.refresh_from_db()
    assert StripeGateway().confirm_on_session(payment, return_url="https://portal.example/back", attempt=1)


def stripe_intent_snapshot(org, fake_stripe, fake_paypal, stripe_card) -> None:
    StripeGateway().snapshot(_stripe_paid(org, fake_stripe))


def stripe_refund(org, fake_stripe, fake_paypal, stripe_card) -> None:
    payment = _stripe_paid(org, fake_stripe)
    refund = Refund.objects.create(payment=payment, organization=org, amount=Decimal("10.00"), currency="USD",
                                   reason="Goodwill")
    StripeGateway().refund(refund)


def stripe_refund_lookup(org, fake_stripe, fake_paypal, stripe_card) -> None:
    payment = _stripe_paid(org, fake_stripe)
    refund = Refund.objects.create(payment=payment, organization=org, amount=Decimal("10.00"), currency="USD",
                                   reason="Goodwill")
    snapshot = StripeGateway().refund(refund)
    assert StripeGateway().refund_lookup(refund) is not None  # by our id, among the intent's refunds
    Refund.objects.filter(pk=refund.pk).update(provider_refund_id=snapshot.provider_refund_id)
    refund.refresh_from_db()
    assert StripeGateway().refund_lookup(refund) == snapshot  # by Stripe's id


def stripe_refunds_of_charge(org, fake_stripe, fake_paypal, stripe_card) -> None:
    payment = _stripe_paid(org, fake_stripe)
    StripeGateway().refunds_of_charge(fake_stripe.objects[payment.provider_payment_id]["latest_charge"])


def stripe_events(org, fake_stripe, fake_paypal, stripe_card) -> None:
    _stripe_paid(org, fake_stripe)
    assert StripeGateway().recent_events(since_epoch=0, types=["checkout.session.completed"])


def _paypal_payment(org) -> Payment:
    return services.payment_start_checkout(organization=org, purpose=Purpose.TOPUP, provider=Provider.PAYPAL,
                                           amount=Decimal("50.00"), urls=return_urls)


def paypal_checkout(org, fake_stripe, fake_paypal, stripe_card) -> None:
    _paypal_payment(org)


def paypal_capture(org, fake_stripe, fake_paypal, stripe_card) -> None:
    payment = _paypal_payment(org)
    fake_paypal.approve(payment.provider_checkout_id)
    PayPalGateway().capture(payment)


def paypal_order_snapshot(org, fake_stripe, fake_paypal, stripe_card) -> None:
    PayPalGateway().snapshot(_paypal_payment(org))


def paypal_refund(org, fake_stripe, fake_paypal, stripe_card) -> None:
    payment = _paypal_payment(org)
    fake_paypal.approve(payment.provider_checkout_id)
    snapshot = PayPalGateway().capture(payment)
    Payment.objects.filter(pk=payment.pk).update(provider_payment_id=snapshot.provider_payment_id)
    payment.refresh_from_db()
    refund = Refund.objects.create(payment=payment, organization=org, amount=Decimal("5.00"), currency="USD",
                                   reason="Goodwill\nwith a second line")
    PayPalGateway().refund(refund)


def paypal_refund_lookup(org, fake_stripe, fake_paypal, stripe_card) -> None:
    payment = _paypal_payment(org)
    fake_paypal.approve(payment.provider_checkout_id)
    snapshot = PayPalGateway().capture(payment)
    Payment.objects.filter(pk=payment.pk).update(provider_payment_id=snapshot.provider_payment_id)
    payment.refresh_from_db()
    refund = Refund.objects.create(payment=payment, organization=org, amount=Decimal("5.00"), currency="USD",
                                   reason="Goodwill")
    created = PayPalGateway().refund(refund)
    assert PayPalGateway().refund_lookup(refund) is not None  # by our id, in the order's refunds
    Refund.objects.filter(pk=refund.pk).update(provider_refund_id=created.provider_refund_id)
    refund.refresh_from_db()
    assert PayPalGateway().refund_lookup(refund).provider_refund_id == created.provider_refund_id


def paypal_verify(org, fake_stripe, fake_paypal, stripe_card) -> None:
    payment = _paypal_payment(org)
    event = fake_paypal.approve(payment.provider_checkout_id)
    body = json.dumps(event).encode()
    assert PayPalGateway().verify_webhook(headers=fake_paypal.sign(body), raw_body=body)


@pytest.mark.parametrize("name", sorted(PROVIDER_CALLS))
def test_each_call_reaches_the_fake_and_its_description_accepts_it(name, org, fake_stripe, fake_paypal,
                                                                   stripe_card):
    call = PROVIDER_CALLS[name]
    scenario: Callable[..., Any] = globals()[call.scenario]
    fake = fake_stripe if call.provider == "stripe" else fake_paypal
    scenario(org, fake_stripe, fake_paypal, stripe_card)
    made = [(method, path, by) for method, path, by in fake.checked
            if method == call.method and re.fullmatch(call.path, path)]
    assert made, f"{name}: the scenario never made the call"
    assert {by.replace("checkout.", "") for _m, _p, by in made} == {call.checked_by.replace("checkout.", "")}
    # ... and the fixtures (fake_stripe, fake_paypal) assert no answer broke the description.


# --- the checks catch what the providers refuse ----------------------------------------


def test_stripe_refuses_a_parameter_its_api_does_not_have(fake_stripe):
    import stripe

    params: Any = {"amount": 100, "currency": "usd", "allowed_payment_method_types": ["card"], "colour": "blue"}
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client().v1.payment_intents.create(params)
    assert raised.value.user_message == "Received unknown parameter: colour"
    assert raised.value.code == "parameter_unknown"


def test_stripe_refuses_a_non_integer_amount_and_a_missing_required_parameter(fake_stripe):
    import stripe

    bad: Any = {"amount": "10.50", "currency": "usd"}
    with pytest.raises(stripe.InvalidRequestError, match="Invalid integer: 10.50"):
        client().v1.payment_intents.create(bad)
    missing: Any = {"currency": "usd"}
    with pytest.raises(stripe.InvalidRequestError, match="Missing required param: amount"):
        client().v1.payment_intents.create(missing)


def test_paypal_refuses_an_order_its_description_does_not_accept(org, fake_paypal):
    from payments.gateways.paypal_gateway import _call
    from payments.gateways.paypal_gateway import client as paypal_client

    with pytest.raises(DomainError) as raised:
        _call(paypal_client().orders.create_order, {"paypal_request_id": "bad-order", "body": {
            "intent": "CAPTURE", "purchase_units": [{"amount": {"currency_code": "usd", "value": "1.234.5"}}]}})
    assert raised.value.code == "provider_integration_error"  # a request PayPal refuses is our bug
    answered = [by for method, path, by in fake_paypal.checked if path == "/v2/checkout/orders"]
    assert answered == ["POST /v2/checkout/orders (checkout_orders_v2.json)"]
    assert "bad-order" not in fake_paypal._idempotent  # refused before the endpoint: nothing stored


def test_the_shape_check_sees_a_field_stripe_does_not_have_and_one_it_always_sends():
    session = provider_contract.stripe_template("checkout.session")
    assert provider_contract.stripe_shape_problems(session) == []
    invented = {**session, "payment_intent_data": {"metadata": {}}}  # what our fake used to return
    assert provider_contract.stripe_shape_problems(invented) == [
        "checkout.session (checkout.session): 'payment_intent_data' is not a field of a Stripe checkout.session"]
    without = {k: v for k, v in session.items() if k != "url"}
    assert provider_contract.stripe_shape_problems(without) == [
        "checkout.session (checkout.session): missing 'url'"]


def test_the_paypal_check_sees_what_paypal_never_returns():
    order = {"id": "5O190127TN364715T", "status": "CREATED", "intent": "CAPTURE",
             "purchase_units": [{"reference_id": "1", "invoice_id": None,
                                 "amount": {"currency_code": "USD", "value": "1.00"},
                                 "payee": {"merchant_id": "MERCHANTFAKE"}}]}
    problems = provider_contract.paypal_response_problems("GET", "/v2/checkout/orders/5O190127TN364715T", 200, order)
    assert any("invoice_id: None is not of type 'string'" in p for p in problems)
    assert any("merchant_id" in p for p in problems)
