"""The console writes money as money (the row's currency, its minor unit, its symbol),
rates in full with what they are per, and times as '2026-12-03 14:05 UTC'."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group

from accounts.models import BillingMode
from accounts.staff import BILLING_ADMIN
from accounts.tests.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(client):
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=BILLING_ADMIN))
    client.force_login(user)
    return client


def test_a_zero_credit_limit_reads_as_zero_not_0e_12(console):
    org = OrganizationFactory(billing_mode=BillingMode.POSTPAID, credit_limit=Decimal("0E-12"))
    page = console.get(f"/console/accounts/organization/{org.pk}/change/").content.decode()
    assert "0E-12" not in page and 'name="credit_limit" value="0.00"' in page


def test_balances_and_ledger_rows_are_money_and_burn_rates_are_labelled_rates(console):
    from credits import services
    from credits.models import Balance

    org = OrganizationFactory(currency="USD")
    services.ledger_post(organization=org, amount=Decimal("3602.165583333333"), kind="adjustment", reason="x")
    Balance.objects.filter(organization=org).update(burn_rate_per_hour=Decimal("2.060000000000"))
    balances = console.get("/console/credits/balance/").content.decode()
    assert "$3,602.17" in balances and "3,602.16558333333" not in balances
    assert "$2.06 (rate per hour)" in balances
    ledger = console.get("/console/credits/ledgerentry/").content.decode()
    assert "$3,602.17" in ledger and "3602.165583333333" not in ledger


def test_console_dates_are_iso_like_with_the_zone(console):
    from accounts.models import Organization

    org = OrganizationFactory()
    Organization.objects.filter(pk=org.pk).update(created_at=datetime(2026, 12, 3, 14, 5, tzinfo=UTC))
    page = console.get("/console/accounts/organization/").content.decode()
    assert "2026-12-03 14:05 UTC" in page
    assert "p.m." not in page and "Dec. 3, 2026" not in page
