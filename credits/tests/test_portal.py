from decimal import Decimal

import pytest

from credits.models import TopUp

pytestmark = pytest.mark.django_db


@pytest.fixture
def member_client(client, org, make_member):
    def _client(role="owner"):
        client.force_login(make_member(org, role).user)
        return client

    return _client


def test_dashboard_card_shows_balance_burn_and_runway(member_client, org, credit):
    from credits.models import Balance

    credit("72.00")
    Balance.objects.filter(organization=org).update(burn_rate_per_hour=Decimal("1"))
    page = member_client().get("/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "$72.00" in html and "$1.00 / hour" in html
    assert "About 3 days left at your current usage" in html


def test_credits_page_lists_the_ledger_and_filters_it(member_client, org, credit):
    credit("10.00", reason="goodwill credit")
    page = member_client("viewer").get("/credits/?kind=topup")
    assert page.status_code == 200
    assert "goodwill credit" not in page.content.decode()
    assert "goodwill credit" in member_client("viewer").get("/credits/").content.decode()


def test_the_dashboard_offers_a_top_up_only_to_those_who_may_buy(member_client, org):
    assert 'href="/payments/top-up"' in member_client("billing").get("/").content.decode()
    assert 'href="/payments/top-up"' not in member_client("viewer").get("/").content.decode()


def test_the_credits_page_starts_the_one_top_up_flow_and_charges_nothing_itself(member_client, org):
    """Its card sends the amount to the top-up page (how to pay, then a confirmation); the
    page that charged the saved card at once is gone."""
    c = member_client("billing")
    page = c.get("/credits/").content.decode()
    assert 'method="get" action="/payments/top-up"' in page and 'id="topup_amount"' in page
    assert c.post("/credits/top-up", {"amount": "25.00", "request_key": "form-1"}).status_code == 404
    assert not TopUp.objects.exists()


def test_auto_top_up_settings_are_saved_from_the_portal(member_client, org):
    c = member_client("billing")
    c.post("/credits/auto-top-up", {"auto-enabled": "on", "auto-threshold": "20", "auto-amount": "100", "auto-monthly_cap": ""})
    assert org.auto_topup.enabled and org.auto_topup.amount == Decimal("100")


def test_top_ups_are_labelled_sandbox_while_no_money_moves_and_not_once_a_provider_is_set(member_client, settings):
    # It compared CREDITS_TOPUP_HANDLER with credits' own sandbox handler, which payments
    # replaces: the label never showed, though the demo's top-ups moved no money.
    client = member_client()
    settings.STRIPE_SECRET_KEY = ""
    assert 'title="Completes locally, no money moves">Sandbox<' in client.get("/credits/").content.decode()
    settings.STRIPE_SECRET_KEY = "sk_test_live_provider"
    assert ">Sandbox<" not in client.get("/credits/").content.decode()
