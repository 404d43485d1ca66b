from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission

from accounts.models import AuditLog
from accounts.staff import BILLING_ADMIN, SUPPORT
from accounts.tests.factories import UserFactory
from credits.models import Balance, LedgerEntry

pytestmark = pytest.mark.django_db


def _staff(group_name):
    from accounts.staff import sync_staff_groups

    sync_staff_groups()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


def test_organization_page_shows_the_ledger_inline(client, org, credit):
    credit("12.34", reason="welcome credit")
    client.force_login(_staff(BILLING_ADMIN))
    page = client.get(f"/console/accounts/organization/{org.pk}/change/")
    assert page.status_code == 200
    assert b"welcome credit" in page.content and b"Ledger (newest" in page.content


def test_billing_admin_adjusts_credit_with_a_reason_and_is_audited(client, org):
    staff = _staff(BILLING_ADMIN)
    client.force_login(staff)
    url = "/console/accounts/organization/"
    form = client.post(url, {"action": "adjust_organization_credit", "_selected_action": [org.pk]})
    assert form.status_code == 200 and b"Post adjustment" in form.content
    missing = client.post(url, {"action": "adjust_organization_credit", "_selected_action": [org.pk], "apply": "1",
                                "amount": "15"})
    assert missing.status_code == 200 and not LedgerEntry.objects.exists()
    done = client.post(url, {"action": "adjust_organization_credit", "_selected_action": [org.pk], "apply": "1",
                             "amount": "15", "reason": "outage credit, INC-88"})
    assert done.status_code == 302
    entry = LedgerEntry.objects.get()
    assert (entry.amount, entry.kind, entry.actor) == (Decimal("15"), "adjustment", staff)
    assert AuditLog.objects.filter(action="credits.adjusted", actor=staff, reason="outage credit, INC-88").exists()
    assert Balance.objects.get(organization=org).amount == Decimal("15")


def test_support_cannot_adjust_credit(client, org):
    support = _staff(SUPPORT)
    assert not support.has_perm("credits.adjust_credit")
    support.user_permissions.add(Permission.objects.get(codename="view_organization"))
    client.force_login(support)
    response = client.post("/console/accounts/organization/", {
        "action": "adjust_organization_credit", "_selected_action": [org.pk], "apply": "1", "amount": "15",
        "reason": "sneaky",
    })
    assert response.status_code in (200, 302, 403)
    assert not LedgerEntry.objects.exists()
