"""The Budgets page: billing and admins create and edit; viewers read; the dashboard
shows a banner once a threshold is crossed; another organisation's budget is a 404."""

from decimal import Decimal

import pytest
from django.utils import timezone

from budgets.models import Budget
from budgets.tests.factories import make_budget
from pricing.proration import month_start

pytestmark = pytest.mark.django_db


def _form(**over):
    data = {"name": "GPUs", "amount": "100.00", "actual_thresholds": "50, 80, 100", "forecast_thresholds": "100",
            "recipient_roles": ["owner"], "recipient_emails": "ops@example.com", "cap_amount": ""}
    data.update(over)
    return data


@pytest.mark.parametrize("role", ["billing", "admin"])
def test_billing_and_admins_create_and_edit(client, org, make_member, role):
    client.force_login(make_member(org, role).user)
    r = client.post("/budgets/", _form())
    assert r.status_code == 302, r.content.decode()[:2000]
    budget = Budget.objects.get(organization=org)
    assert (budget.amount, budget.actual_thresholds, budget.recipient_emails, budget.cap_amount) == (
        Decimal("100.00"), [50, 80, 100], ["ops@example.com"], None)
    r = client.post(f"/budgets/{budget.pk}/", _form(amount="150", cap_amount="200"))
    assert r.status_code == 302
    budget.refresh_from_db()
    assert (budget.amount, budget.cap_amount) == (Decimal("150.00"), Decimal("200.00"))
    page = client.get("/budgets/").content.decode()
    assert "GPUs" in page and "$150.00" in page


def test_bad_input_is_shown_on_its_field(client, org, make_member):
    client.force_login(make_member(org, "billing").user)
    r = client.post("/budgets/", _form(amount="10.001", actual_thresholds="fifty"))
    assert r.status_code == 400
    page = r.content.decode()
    assert "Enter whole percentages" in page
    assert not Budget.objects.exists()
    r = client.post("/budgets/", _form(amount="10.001"))
    assert "Enter at most 2 decimal places." in r.content.decode()


def test_viewers_read_but_cannot_change(client, org, make_member):
    budget = make_budget(org)
    client.force_login(make_member(org, "viewer").user)
    page = client.get("/budgets/")
    assert page.status_code == 200 and "Monthly" in page.content.decode()
    assert "Create budget" not in page.content.decode()
    assert client.post("/budgets/", _form()).status_code == 403
    assert client.post(f"/budgets/{budget.pk}/", _form()).status_code == 403
    assert client.post(f"/budgets/{budget.pk}/delete").status_code == 403
    assert Budget.objects.count() == 1


def test_another_organisations_budget_is_a_404(client, org, other_org, make_member):
    theirs = make_budget(other_org, name="Their budget")
    client.force_login(make_member(org, "owner").user)
    assert client.get(f"/budgets/{theirs.pk}/").status_code == 404
    assert client.post(f"/budgets/{theirs.pk}/delete").status_code == 404
    assert "Their budget" not in client.get("/budgets/").content.decode()


def test_the_dashboard_shows_a_crossed_budget(client, org, make_member):
    budget = make_budget(org, cap_amount=Decimal("12.00"))
    client.force_login(make_member(org, "owner").user)
    assert "Threshold crossed" not in client.get("/").content.decode()
    Budget.objects.filter(pk=budget.pk).update(armed_month=month_start(timezone.now()).date(),
                                               alerts_sent=["actual:80"], actual=Decimal("8.40"),
                                               forecast=Decimal("11.00"))
    page = client.get("/").content.decode()
    assert "Threshold crossed" in page
    assert "$8.40 of $10.00 (84.0%)" in page
