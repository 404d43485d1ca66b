"""An abandoned checkout never hides an invoice (issue 16, defect 1): an open invoice is
payable from its own page and from the list whatever checkouts were left unfinished, a
new checkout supersedes the old one at the provider (Stripe's session expired, PayPal's
order left to lapse and never captured), and one invoice is never charged twice."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import DomainError
from payments import services
from payments.models import Payment, PaymentStatus, Provider, Purpose
from payments.tests.conftest import return_urls
from payments.tests.factories import make_open_invoice
from payments.tests.fakes import CheckoutClosed

pytestmark = pytest.mark.django_db
S = PaymentStatus


@pytest.fixture
def portal(client, owner):
    client.force_login(owner)
    return client


def _pay_form(html: str, invoice) -> bool:
    return f'action="/payments/invoices/{invoice.pk}/pay"' in html


def test_after_cancel_and_go_back_the_invoice_is_still_payable_from_the_list_and_its_page(portal, org):
    invoice = make_open_invoice(org, amount_due=Decimal("20000.00"))
    response = portal.post(f"/payments/invoices/{invoice.pk}/pay", {"amount": "20000.00", "provider": "sandbox"})
    abandoned = Payment.objects.get()
    assert response["Location"] == f"/payments/sandbox/checkout/{abandoned.pk}"
    portal.get(f"/payments/{abandoned.pk}?canceled=1")  # "Cancel and go back"
    assert Payment.objects.get().status == S.REQUIRES_ACTION  # awaiting customer

    payments_page = portal.get("/payments/").content.decode()
    assert "Nothing to pay." not in payments_page
    assert invoice.number in payments_page and "$20,000.00" in payments_page and _pay_form(payments_page, invoice)
    invoice_page = portal.get(f"/invoices/{invoice.pk}/").content.decode()
    assert "Pay this invoice" in invoice_page and _pay_form(invoice_page, invoice)
    assert 'name="back" value="invoice"' in invoice_page


def test_paying_again_from_the_invoice_page_supersedes_the_abandoned_checkout_and_pays_once(portal, org, balance):
    invoice = make_open_invoice(org, amount_due=Decimal("120.00"))
    portal.post(f"/payments/invoices/{invoice.pk}/pay", {"amount": "120.00", "provider": "sandbox"})
    first = Payment.objects.get()
    response = portal.post(f"/payments/invoices/{invoice.pk}/pay",
                           {"amount": "120.00", "provider": "sandbox", "back": "invoice"})
    second = Payment.objects.exclude(pk=first.pk).get()
    assert response["Location"] == f"/payments/sandbox/checkout/{second.pk}"
    first.refresh_from_db()
    assert (first.status, first.failure_message) == (S.CANCELED, "Replaced by a newer checkout.")

    portal.post(f"/payments/sandbox/checkout/{second.pk}", {"outcome": "pay"})
    portal.post(f"/payments/sandbox/checkout/{first.pk}", {"outcome": "pay"})  # the old tab, too late
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", Decimal("120.00"))
    assert list(Payment.objects.filter(status=S.SUCCEEDED)) == [second]
    assert balance(org) == Decimal("120.00")  # one payment's money; nothing paid twice, nothing kept as credit
    assert "Pay this invoice" not in portal.get(f"/invoices/{invoice.pk}/").content.decode()


def test_a_bad_amount_on_the_invoice_page_is_told_there(portal, org):
    invoice = make_open_invoice(org, amount_due=Decimal("100.00"))
    response = portal.post(f"/payments/invoices/{invoice.pk}/pay",
                           {"amount": "abc", "provider": "sandbox", "back": "invoice"}, follow=True)
    assert response.redirect_chain[-1][0] == f"/invoices/{invoice.pk}/"
    assert f"Invoice {invoice.number}: Enter an amount in digits" in response.content.decode()
    assert not Payment.objects.exists()


def _stripe_checkout(org, invoice, amount="120.00") -> Payment:
    return services.payment_start_checkout(organization=org, purpose=Purpose.INVOICE, provider=Provider.STRIPE,
                                           amount=Decimal(amount), invoice=invoice, urls=return_urls)


def test_a_new_stripe_checkout_expires_the_abandoned_session_so_only_one_can_be_paid(
        org, fake_stripe, deliver_stripe, balance):
    invoice = make_open_invoice(org, amount_due=Decimal("120.00"))
    first = _stripe_checkout(org, invoice)
    second = _stripe_checkout(org, invoice)
    assert fake_stripe.count("POST", f"/v1/checkout/sessions/{first.provider_checkout_id}/expire") == 1
    assert fake_stripe.objects[first.provider_checkout_id]["status"] == "expired"
    first.refresh_from_db()
    assert first.status == S.CANCELED

    with pytest.raises(CheckoutClosed):  # the old tab: Stripe shows the customer it is over
        fake_stripe.complete_checkout(first.provider_checkout_id)
    for event in fake_stripe.complete_checkout(second.provider_checkout_id):
        assert deliver_stripe(event).status_code == 200
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", Decimal("120.00"))
    charged = [o for o in fake_stripe.objects.values() if o["object"] == "payment_intent" and o["status"] == "succeeded"]
    assert len(charged) == 1 and balance(org) == Decimal("120.00")  # one charge, none kept as excess credit


def test_a_session_paid_in_another_tab_is_recorded_and_no_second_checkout_opens(org, fake_stripe, balance):
    invoice = make_open_invoice(org, amount_due=Decimal("120.00"))
    first = _stripe_checkout(org, invoice)
    fake_stripe.complete_checkout(first.provider_checkout_id)  # paid, its webhook not here yet
    sessions_before = fake_stripe.count("POST", "/v1/checkout/sessions")
    with pytest.raises(Exception, match="Only an open invoice can be paid"):
        _stripe_checkout(org, invoice)
    first.refresh_from_db()
    invoice.refresh_from_db()
    assert first.status == S.SUCCEEDED and (invoice.status, invoice.amount_paid) == ("paid", Decimal("120.00"))
    created = [p for m, p in fake_stripe.requests if m == "POST" and p == "/v1/checkout/sessions"]
    assert len(created) == sessions_before == 1 and Payment.objects.count() == 1


def _paypal_checkout(org, invoice, amount="120.00") -> Payment:
    return services.payment_start_checkout(organization=org, purpose=Purpose.INVOICE, provider=Provider.PAYPAL,
                                           amount=Decimal(amount), invoice=invoice, urls=return_urls)


def test_a_superseded_paypal_order_is_left_to_lapse_and_never_captured(
        org, owner, client, fake_paypal, deliver_paypal):
    invoice = make_open_invoice(org, amount_due=Decimal("120.00"))
    first = _paypal_checkout(org, invoice)
    second = _paypal_checkout(org, invoice)
    first.refresh_from_db()
    assert first.status == S.CANCELED and second.status == S.REQUIRES_ACTION

    # The buyer approves the old order in a forgotten tab: PayPal tells us and sends them back.
    approved = fake_paypal.approve(first.provider_checkout_id)
    assert deliver_paypal(approved).status_code == 200
    client.force_login(owner)
    client.get(f"/payments/{first.pk}/return")
    assert fake_paypal.count("POST", f"/v2/checkout/orders/{first.provider_checkout_id}/capture") == 0
    first.refresh_from_db()
    assert first.status == S.CANCELED

    fake_paypal.approve(second.provider_checkout_id)
    client.get(f"/payments/{second.pk}/return")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", Decimal("120.00"))
    assert len(fake_paypal.captures) == 1


def test_a_paypal_order_approved_before_paying_again_is_captured_and_no_second_checkout_opens(org, fake_paypal):
    invoice = make_open_invoice(org, amount_due=Decimal("120.00"))
    first = _paypal_checkout(org, invoice)
    fake_paypal.approve(first.provider_checkout_id)  # approved; our capture has not run yet
    with pytest.raises(Exception, match="Only an open invoice can be paid"):
        _paypal_checkout(org, invoice)
    first.refresh_from_db()
    invoice.refresh_from_db()
    assert first.status == S.SUCCEEDED and invoice.status == "paid"
    assert len(fake_paypal.captures) == 1 and Payment.objects.count() == 1


def test_money_in_flight_still_counts_but_the_invoice_stays_listed(portal, org, fake_stripe):
    """A delayed payment (a bank debit submitted on Stripe's page) is money on its way: the
    invoice stays in the list with what it still asks for, and says a payment is under way."""
    invoice = make_open_invoice(org, amount_due=Decimal("120.00"))
    first = _stripe_checkout(org, invoice)
    fake_stripe.complete_checkout(first.provider_checkout_id, async_payment=True)
    services.payment_apply_snapshot(payment_id=first.pk, snapshot=services.lifecycle.PaymentSnapshot(
        status=S.PROCESSING))
    page = portal.get("/payments/").content.decode()
    assert invoice.number in page and "is on its way" in page and not _pay_form(page, invoice)


def test_a_checkout_whose_delayed_payment_failed_is_ended_by_the_next_one(org, fake_stripe, deliver_stripe):
    """A completed session whose bank debit failed can take no more money (Stripe will not
    expire it: it is not open): the next checkout cancels it once, so it never again stands
    in the candidates, costing provider calls on every checkout after."""
    invoice = make_open_invoice(org, amount_due=Decimal("120.00"))
    first = _stripe_checkout(org, invoice)
    for event in fake_stripe.complete_checkout(first.provider_checkout_id, async_payment=True):
        assert deliver_stripe(event).status_code == 200
    for event in fake_stripe.settle_async(first.provider_checkout_id, succeeded=False):
        assert deliver_stripe(event).status_code == 200
    first.refresh_from_db()
    assert first.status == S.FAILED
    _stripe_checkout(org, invoice)
    first.refresh_from_db()
    assert first.status == S.CANCELED
    calls = len(fake_stripe.requests)
    _stripe_checkout(org, invoice)  # supersedes the second checkout only
    later = [p for _m, p in fake_stripe.requests[calls:]]
    assert not any(first.provider_checkout_id in p or (first.provider_payment_id and first.provider_payment_id in p)
                   for p in later)


def test_a_checkout_that_is_refused_ends_none_of_the_open_ones(org, fake_stripe):
    """Asking for more than is due is refused, and refused before superseding: the page
    the customer has open in another tab stays payable."""
    invoice = make_open_invoice(org, amount_due=Decimal("120.00"))
    first = _stripe_checkout(org, invoice)
    with pytest.raises(DomainError, match=r"At most \$120\.00 is still open"):
        _stripe_checkout(org, invoice, amount="500.00")
    first.refresh_from_db()
    assert first.status in (S.PENDING, S.REQUIRES_ACTION)
    assert fake_stripe.count("POST", f"/v1/checkout/sessions/{first.provider_checkout_id}/expire") == 0


def test_two_checkouts_started_at_once_leave_only_the_newer_payable(org, fake_stripe, monkeypatch):
    """Review finding: two starts at the same moment each looked for a checkout to replace
    before the other's payment existed, and both pages stayed payable. The newer one ends
    the older once its own page exists."""
    from payments.services import lifecycle

    invoice = make_open_invoice(org, amount_due=Decimal("120.00"))
    first = _stripe_checkout(org, invoice)
    real, looks = lifecycle.payment_supersede_checkouts, []

    def raced(**kwargs):  # the second start's first look ran before the first payment existed
        looks.append(kwargs)
        return [] if len(looks) == 1 else real(**kwargs)

    monkeypatch.setattr(lifecycle, "payment_supersede_checkouts", raced)
    second = _stripe_checkout(org, invoice)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == PaymentStatus.CANCELED and second.status == PaymentStatus.REQUIRES_ACTION
    assert fake_stripe.count("POST", f"/v1/checkout/sessions/{first.provider_checkout_id}/expire") == 1
    assert fake_stripe.objects[first.provider_checkout_id]["status"] == "expired"
