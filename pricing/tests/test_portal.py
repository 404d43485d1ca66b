from datetime import timedelta
from decimal import Decimal as D

import pytest
import time_machine
from django.test import Client

from pricing import services
from pricing.services import OverrideSpec
from pricing.tests.conftest import T0

NOW = T0 + timedelta(days=3)


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def test_pricing_page_shows_the_organisations_prices_with_contract_prices_marked(org, make_member, server,
                                                                                 make_price):
    make_price(server, "0.119", monthly_cap=D("79.00"))
    make_price(server, "0.008", state="stopped")
    services.contract_create(organization=org, name="Deal 2026", valid_from=NOW, note="Signed", now=NOW,
                             prices=[OverrideSpec(product=server, state="running", kind="absolute",
                                                  amount=D("0.099"))])
    page = _client(make_member(org, "viewer").user).get("/pricing/").content.decode()
    assert "Your contract: Deal 2026" in page
    assert "$0.099" in page and "$0.119" in page  # the contract rate and the list rate it replaces
    assert page.count('<br><span class="badge ok">contract</span>') == 1  # one cell: running
    assert "$0.008" in page
    assert "Never more than" in page


def test_another_organisations_contract_is_not_shown(org, other_org, make_member, server, make_price):
    make_price(server, "0.119")
    services.contract_create(organization=other_org, name="Secret deal", valid_from=NOW, note="Signed", now=NOW,
                             prices=[OverrideSpec(product=server, kind="discount", discount_percent=D("50"))])
    page = _client(make_member(org, "viewer").user).get("/pricing/").content.decode()
    assert "Secret deal" not in page and "$0.0595" not in page
    assert "$0.119" in page


def test_pricing_page_prices_in_the_organisations_currency(org, make_member, server, make_price):
    org.currency = "EUR"
    org.save()
    make_price(server, "0.119")
    page = _client(make_member(org, "viewer").user).get("/pricing/").content.decode()
    assert "No prices in EUR yet" in page


def test_pricing_page_writes_tiers_up_to_inclusive_with_every_decimal_of_a_bound(org, make_member, make_price, db):
    from pricing.quantity_pricing import Tier
    from pricing.tests.factories import ProductFactory

    egress = ProductFactory(code="egress", name="Egress", kind="bandwidth", billing_model="overage", vcpus=None,
                            unit_label="GB")
    make_price(egress, "0", unit="gb", pricing_model="volume",
               tiers=[Tier(D("10000"), D("0.01")), Tier(D("50000.499999"), D("0.008")), Tier(None, D("0.005"))])
    page = _client(make_member(org, "viewer").user).get("/pricing/").content.decode()
    assert "Up to 10,000 GB: $0.01" in page
    assert "Above 10,000 up to 50,000.499999 GB: $0.008" in page  # never rounded to 50,000.50
    assert "Above 50,000.499999 GB: $0.005" in page
