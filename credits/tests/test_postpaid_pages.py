"""Postpaid customers see postpaid words (issue 16, defect 2): the dashboard card and the
Credits page speak of credit limit, usage to date and open invoices, never of a prepaid
balance, a "Low" badge, buying credit or auto top-up."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import BillingMode
from credits.models import Balance

pytestmark = pytest.mark.django_db

PREPAID_WORDS = ("Your prepaid balance follows the meter every minute", "Buy credit", ">Low<", "Auto top-up",
                 "Top up", "Runway")


@pytest.fixture
def postpaid(org, credit):
    from payments.tests.factories import make_open_invoice

    org.billing_mode = BillingMode.POSTPAID
    org.credit_limit = Decimal("50000")
    org.payment_terms_days = 30
    org.save()
    credit("-20373.38", reason="usage drawn")  # the ledger of a postpaid account runs below zero
    Balance.objects.filter(organization=org).update(burn_rate_per_hour=Decimal("12.5"))
    make_open_invoice(org, amount_due=Decimal("20000.00"))
    return org


@pytest.fixture
def portal(client, owner):
    client.force_login(owner)
    return client


@pytest.mark.parametrize("path", ["/", "/credits/"])
def test_a_postpaid_page_speaks_of_credit_limit_usage_to_date_and_open_invoices(portal, postpaid, path):
    html = portal.get(path).content.decode()
    for word in PREPAID_WORDS:
        assert word not in html, word
    assert "Postpaid" in html
    assert "Credit limit" in html and "$50,000.00" in html
    assert "so far" in html  # this month's usage to date (the one month-to-date figure)
    assert "Open invoices" in html and "1 open" in html and "$20,000.00" in html
    account = html.split("<h2>Ledger")[0]  # the ledger lists its entries signed, as a ledger does
    assert "Unpaid so far" in account and "$20,373.38" in account and "-$20,373.38" not in account
    assert "Left within your limit" in html and "$29,626.62" in html
    assert "due 30 days after issue" in html
    assert "color:var(--bad)" not in html


def test_a_postpaid_account_over_its_limit_says_so(portal, postpaid):
    postpaid.credit_limit = Decimal("10000")
    postpaid.save()
    assert "Over credit limit" in portal.get("/credits/").content.decode()


def test_a_postpaid_account_without_a_limit_says_none_is_set(portal, postpaid):
    postpaid.credit_limit = Decimal("0")
    postpaid.save()
    html = portal.get("/credits/").content.decode()
    assert "None set" in html and "Left within your limit" not in html


def test_a_prepaid_page_keeps_its_prepaid_words(portal, org, credit):
    credit("3.00")
    html = portal.get("/credits/").content.decode()
    assert "Your prepaid balance follows the meter every minute" in html and "Auto top-up" in html
    assert "Credit limit" not in html


def test_the_summary_of_a_postpaid_balance_below_zero_is_never_low(postpaid):
    from credits.selectors import credit_summary

    summary = credit_summary(organization=postpaid)
    assert summary.low is False and summary.postpaid is not None
    assert (summary.postpaid.owed, summary.postpaid.open_total) == (Decimal("20373.38"), Decimal("20000.00"))
