"""The console: a billing admin raises a budget's cap through the services (so what the cap
hibernated resumes) and the change is audited with the staff member."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group

from accounts.models import AuditLog
from accounts.staff import BILLING_ADMIN, SUPPORT, sync_staff_groups
from accounts.tests.factories import UserFactory
from budgets.models import Budget
from budgets.tests.factories import make_budget

pytestmark = pytest.mark.django_db


def _staff(group_name):
    sync_staff_groups()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


def _post(client, budget, **over):
    data = {"name": budget.name, "amount": str(budget.amount), "actual_thresholds": "50,80,100",
            "forecast_thresholds": "100", "recipient_roles": "owner,billing", "recipient_emails": "",
            "cap_amount": ""}
    data.update(over)
    return client.post(f"/console/budgets/budget/{budget.pk}/change/", data)


def test_a_billing_admin_edits_through_the_services_and_it_is_audited(client, org):
    budget = make_budget(org, cap_amount=Decimal("8.00"))
    staff = _staff(BILLING_ADMIN)
    client.force_login(staff)
    assert client.get(f"/console/budgets/budget/{budget.pk}/change/").status_code == 200
    r = _post(client, budget, amount="25.00", cap_amount="30.00")
    assert r.status_code == 302, r.content.decode()[:3000]
    budget = Budget.objects.get(pk=budget.pk)
    assert (budget.amount, budget.cap_amount) == (Decimal("25.00"), Decimal("30.00"))
    log = AuditLog.objects.get(action="budgets.updated")
    assert log.actor == staff
    assert log.changes["amount"] == ["10.00", "25.00"]


def test_bad_amounts_are_refused_on_the_form(client, org):
    budget = make_budget(org)
    client.force_login(_staff(BILLING_ADMIN))
    r = _post(client, budget, amount="10.005")
    assert r.status_code == 200
    assert "Enter at most 2 decimal places." in r.content.decode() or "decimal" in r.content.decode()
    assert Budget.objects.get(pk=budget.pk).amount == Decimal("10.00")


def test_support_reads_but_cannot_change(client, org):
    budget = make_budget(org)
    client.force_login(_staff(SUPPORT))
    assert client.get(f"/console/budgets/budget/{budget.pk}/change/").status_code == 200
    _post(client, budget, amount="99.00")
    assert Budget.objects.get(pk=budget.pk).amount == Decimal("10.00")
