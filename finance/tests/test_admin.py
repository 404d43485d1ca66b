"""The console: staff edit the chart of accounts and the movement mapping (audited), an
account that carries lines is never deleted, and the journal is read-only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts.models import AuditLog
from accounts.staff import BILLING_ADMIN, SUPPORT
from accounts.tests.factories import UserFactory
from finance.journal import journal_build
from finance.models import Account, JournalEntry, MovementAccount
from finance.tests.world import NOW

pytestmark = pytest.mark.django_db


def _staff(client, group: str):
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return client, user


def test_a_billing_admin_renames_an_account_and_it_is_audited(client):
    client, user = _staff(client, BILLING_ADMIN)
    acct = Account.objects.get(number="1361")
    response = client.post(f"/console/finance/account/{acct.pk}/change/", {
        "number": "1361", "name": "Stripe clearing (EUR)", "type": "asset", "role": "provider_clearing",
        "provider": "stripe", "product_group": "", "tax_country": "", "tax_rate": ""})
    assert response.status_code == 302, response.content[:500]
    acct.refresh_from_db()
    assert acct.name == "Stripe clearing (EUR)"
    audit = AuditLog.objects.get(action="account.changed_in_console")
    assert audit.actor == user and audit.changes == {"name": ["Stripe clearing", "Stripe clearing (EUR)"]}


def test_a_billing_admin_remaps_a_movement_and_it_is_audited(client):
    client, _user = _staff(client, BILLING_ADMIN)
    mapping = MovementAccount.objects.get(movement="promo_expiry")
    other = Account.objects.get(number="4600")
    response = client.post(f"/console/finance/movementaccount/{mapping.pk}/change/",
                           {"movement": "promo_expiry", "account": other.pk})
    assert response.status_code == 302
    mapping.refresh_from_db()
    assert mapping.account == other
    assert AuditLog.objects.filter(action="movementaccount.changed_in_console").count() == 1


def test_an_account_number_that_datev_refuses_is_a_field_error(client):
    client, _user = _staff(client, BILLING_ADMIN)
    response = client.post("/console/finance/account/add/", {
        "number": "12", "name": "Too short", "type": "asset", "role": "suspense", "provider": "",
        "product_group": "", "tax_country": "", "tax_rate": ""})
    assert response.status_code == 200
    assert b"finance_account_number_digits" in response.content or b"errorlist" in response.content
    assert not Account.objects.filter(number="12").exists()


def test_an_account_with_lines_is_never_deleted(world, client):
    journal_build(now=NOW)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))  # the groups delete no account at all
    used = Account.objects.get(number="1369")
    assert client.get(f"/console/finance/account/{used.pk}/delete/").status_code == 403
    unused = Account.objects.create(number="1399", name="Spare", type="asset", role="suspense", provider="spare")
    assert client.post(f"/console/finance/account/{unused.pk}/delete/", {"post": "yes"}).status_code == 302


def test_journal_entries_are_listed_read_only(world, client):
    journal_build(now=NOW)
    client, _user = _staff(client, SUPPORT)
    listing = client.get("/console/finance/journalentry/")
    assert listing.status_code == 200
    # NOW is in December 2026: the exports link to November.
    assert b"/console/finance/journal-datev.csv?from=2026-11-01&amp;to=2026-11-30&amp;currency=EUR" in listing.content
    entry = JournalEntry.objects.get(movement="topup")
    page = client.get(f"/console/finance/journalentry/{entry.pk}/change/")
    assert page.status_code == 200 and b"1369" in page.content
    assert client.post(f"/console/finance/journalentry/{entry.pk}/change/", {}).status_code == 403
    assert client.get("/console/finance/journalentry/add/").status_code == 403
    assert client.get("/console/finance/account/").status_code == 200


def test_product_groups_without_an_account_get_one_from_the_console(client):
    from pricing.models import ProductGroup

    ProductGroup.objects.create(slug="storage", name="Storage", position=2)
    ProductGroup.objects.create(slug="gpu", name="GPU servers", position=1)
    client, user = _staff(client, BILLING_ADMIN)
    taken = set(Account.objects.values_list("number", flat=True))
    response = client.post("/console/finance/account/", {"action": "add_group_revenue",
                                                         "_selected_action": [Account.objects.first().pk]})
    assert response.status_code == 302
    added = Account.objects.exclude(number__in=taken).order_by("number")
    assert [(a.name, a.product_group.slug) for a in added] == [("Revenue GPU servers", "gpu"),
                                                                ("Revenue Storage", "storage")]
    first = int(added[0].number)
    assert 8201 <= first and [a.number for a in added] == [str(first), str(first + 1)]
    assert AuditLog.objects.filter(action="account.created", actor=user).count() == len(added)
    client.post("/console/finance/account/", {"action": "add_group_revenue",
                                              "_selected_action": [Account.objects.first().pk]})
    assert Account.objects.exclude(number__in=taken).count() == len(added)  # once
