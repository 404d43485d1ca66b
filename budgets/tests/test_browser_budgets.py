"""The Budgets page and the dashboard banner, looked at in a browser."""

from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.tests.factories import MembershipFactory, UserFactory
from budgets.models import Budget, BudgetAlert
from budgets.tests.factories import make_budget
from core.tests.browser import axe_violations, overflowing, shot
from pricing.proration import month_start

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_budgets_page_and_banner(portal_page, org):
    user = UserFactory()
    MembershipFactory(organization=org, user=user, role="billing")
    now = timezone.now()
    month = month_start(now).date()
    gpu = make_budget(org, name="GPU fleet", amount=Decimal("1000.00"), cap_amount=Decimal("1200.00"))
    make_budget(org, name="Storage", amount=Decimal("200.00"), actual_thresholds=[80])
    Budget.objects.filter(pk=gpu.pk).update(armed_month=month, alerts_sent=["actual:50", "actual:80",
                                                                           "forecast:100"],
                                            actual=Decimal("812.40"), forecast=Decimal("1310.75"), as_of=now,
                                            evaluated_at=now)
    for kind, t, spend in (("forecast", 100, "1004.10"), ("actual", 50, "500.20"), ("actual", 80, "812.40")):
        BudgetAlert.objects.create(budget=gpu, organization=org, month=month, kind=kind, threshold=t, currency="USD",
                                   amount=Decimal("1000.00"), spend=Decimal(spend),
                                   recipients=["ops@example.com"], created_at=now)
    page = portal_page(user)
    page.goto("/budgets/")
    assert "GPU fleet" in page.inner_text("main")
    assert not overflowing(page)
    assert axe_violations(page) == []
    shot(page, "budgets")
    page.goto("/")
    assert "Threshold crossed" in page.inner_text("main")
    shot(page, "dashboard-budget-banner")
    page = portal_page(user, viewport="phone")
    page.goto("/budgets/")
    assert not overflowing(page)
