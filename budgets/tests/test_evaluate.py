"""Budgets' evaluation on real metering with a moving clock. $1.00 an hour against a $10.00
budget: each closed hour is 10% of it (the month-to-date figure moves when metering closes
an hour)."""

from decimal import Decimal

import pytest
from django.core import mail

from budgets import services
from budgets.models import Budget, BudgetAlert
from budgets.tests.factories import make_budget
from webhooks.models import WebhookMessage

from .conftest import at

pytestmark = pytest.mark.django_db


def sent(budget):
    return [(a.month.isoformat(), a.kind, a.threshold, a.spend) for a in budget.alerts.order_by("id")]


def test_fifty_eighty_hundred_once_each_and_forecast_before_actual(org, owner, gpu, start_server, tick):
    from webhooks.tests.factories import make_endpoint

    make_endpoint(org, event_types=["budget.threshold_crossed"])
    budget = make_budget(org, recipient_emails=["ops@example.com"])
    start_server(org, gpu, at(0, 0))
    tick(at(1, 0))
    budget.refresh_from_db()
    assert budget.actual == Decimal("1.00")
    # 1.00 so far + $1.00/h over the 527 h from 10 March 01:00 to 1 April
    assert budget.forecast == Decimal("528.00")
    assert sent(budget) == [("2026-03-01", "forecast", 100, Decimal("528.00"))]
    for hour in (2, 3, 4):
        tick(at(hour, 0))
    tick(at(4, 59))
    assert budget.alerts.count() == 1  # 4.00: under 50%
    tick(at(5, 0))
    tick(at(5, 0))  # a rerun sends nothing
    tick(at(5, 30))  # the hour is open: still 5.00
    for hour in (6, 7, 8, 9, 10, 11):
        tick(at(hour, 0))
    budget.refresh_from_db()
    assert sent(budget)[1:] == [("2026-03-01", "actual", 50, Decimal("5.00")),
                                ("2026-03-01", "actual", 80, Decimal("8.00")),
                                ("2026-03-01", "actual", 100, Decimal("10.00"))]
    assert budget.alerts_sent == ["actual:100", "actual:50", "actual:80", "forecast:100"]
    assert budget.actual == Decimal("11.00")
    assert len(mail.outbox) == 4
    assert sorted(mail.outbox[1].to) == sorted(["ops@example.com", owner.email.lower()])
    assert "Spend this month is $5.00: 50% of the budget" in mail.outbox[1].body
    messages = WebhookMessage.objects.filter(event_type="budget.threshold_crossed").order_by("id")
    assert [(m.data["kind"], m.data["threshold"], m.data["spend"], m.data["amount"]) for m in messages] == [
        ("forecast", 100, "528.00", "10.00"), ("actual", 50, "5.00", "10.00"), ("actual", 80, "8.00", "10.00"),
        ("actual", 100, "10.00", "10.00")]


def test_crossing_several_at_once_sends_the_highest_and_arms_the_rest(org, gpu, start_server, tick):
    budget = make_budget(org, forecast_thresholds=[])
    start_server(org, gpu, at(0, 0))
    tick(at(8, 0), evaluate=False)
    tick(at(8, 30))
    assert sent(budget) == [("2026-03-01", "actual", 80, Decimal("8.00"))]
    budget.refresh_from_db()
    assert budget.alerts_sent == ["actual:50", "actual:80"]


def test_re_armed_next_month(org, gpu, start_server, tick):
    budget = make_budget(org)
    start_server(org, gpu, at(12, 0, day=31))
    tick(at(22, 0, day=31))  # 10 hours: 10.00, every threshold at once
    budget.refresh_from_db()
    assert budget.alerts_sent == ["actual:100", "actual:50", "actual:80", "forecast:100"]
    tick(at(3, 0, day=1, month=4))
    budget.refresh_from_db()
    # April: 3 hours, 3.00; the forecast 3.00 + the 717 h to 1 May
    assert (budget.armed_month.isoformat(), budget.actual, budget.forecast) == (
        "2026-04-01", Decimal("3.00"), Decimal("720.00"))
    tick(at(5, 0, day=1, month=4))
    april = [s for s in sent(budget) if s[0] == "2026-04-01"]
    assert april == [("2026-04-01", "forecast", 100, Decimal("720.00")),
                     ("2026-04-01", "actual", 50, Decimal("5.00"))]


def test_raising_the_amount_re_arms_what_it_lifts_the_spend_below(org, gpu, start_server, tick):
    budget = make_budget(org, forecast_thresholds=[])
    start_server(org, gpu, at(0, 0))
    for hour in (5, 8, 10):
        tick(at(hour, 0))
    budget.refresh_from_db()
    assert budget.alerts_sent == ["actual:100", "actual:50", "actual:80"]
    services.budget_update(budget=budget, amount=Decimal("20.00"), now=at(10, 5))
    budget.refresh_from_db()
    assert budget.alerts_sent == ["actual:50"]  # 10.00 is still 50% of 20.00
    tick(at(15, 0))
    assert budget.alerts.count() == 3  # 15.00: 75%
    tick(at(16, 0))
    assert sent(budget)[-1] == ("2026-03-01", "actual", 80, Decimal("16.00"))
    # Saving it unchanged, or lowering it, re-arms nothing.
    services.budget_update(budget=budget, amount=Decimal("20.00"), now=at(16, 5))
    services.budget_update(budget=budget, amount=Decimal("18.00"), now=at(16, 6))
    assert Budget.objects.get(pk=budget.pk).alerts_sent == ["actual:50", "actual:80"]


def test_a_budget_without_spend_sends_nothing(org, tick):
    budget = make_budget(org)
    tick(at(10, 0))
    budget.refresh_from_db()
    assert (budget.actual, budget.forecast, budget.alerts_sent) == (Decimal("0"), Decimal("0"), [])
    assert not BudgetAlert.objects.exists()


def test_the_demo_seed_is_idempotent(db):
    from accounts.tests.factories import OrganizationFactory
    from budgets import demo

    org = OrganizationFactory(slug="acme-ai")
    demo.seed()
    demo.seed()
    budget = Budget.objects.get(organization=org)
    assert (budget.name, budget.amount, budget.actual) == (demo.NAME, Decimal("100"), Decimal("0"))
