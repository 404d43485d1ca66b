"""Credit runs out at the right minute (issue 15, item 9): metering runs two minutes behind
the clock, so hibernation judges the balance projected to now, not the posted one."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from credits import hibernation, runway
from credits.models import Balance
from pricing.models import ResourceState
from pricing.tests.factories import ProductFactory
from usage.models import Resource
from usage.tests.factories import add_price

from .test_sync import meter, running_server

pytestmark = pytest.mark.django_db
LAG = timedelta(minutes=2)  # how far metering runs behind the clock


@pytest.fixture(autouse=True)
def hooks(settings):
    settings.USAGE_METERING_CHUNKS = 2
    settings.USAGE_AFTER_METERING = ["credits.sync.after_metering"]


def at(hour, minute=0):
    return datetime(2026, 3, 10, hour, minute, tzinfo=UTC)


def test_a_ten_dollar_top_up_at_ten_cents_a_minute_hibernates_when_it_runs_out_not_two_minutes_later(
        org, credit, django_capture_on_commit_callbacks):
    product = ProductFactory(code="gpu-1")
    add_price(product, "6.00", valid_from=at(0))  # $0.10 a minute
    add_price(product, "0.00", state=ResourceState.HIBERNATED, valid_from=at(0))
    credit("10.00")
    with time_machine.travel(at(10, 0), tick=False):
        running_server(org, product, at(10, 0))
    now = at(10, 3)
    while Resource.objects.get().state == ResourceState.RUNNING and now < at(12, 0):
        with time_machine.travel(now, tick=False):
            meter(now - LAG, django_capture_on_commit_callbacks)  # metering, as beat runs it, behind
            if now.minute % 5 == 0:
                runway.compute_burn_rates(now=now)  # every five minutes, as beat runs it
            with django_capture_on_commit_callbacks(execute=True):
                hibernation.hibernate_due(now=now)
        now += timedelta(minutes=1)
    balance = Balance.objects.get(organization=org)
    # The $10 last 100 minutes: out at 11:40. Before, hibernation waited for the posted
    # balance (two minutes behind) and came at 11:42, the balance ending at -0.20. The
    # projection uses the burn rate beat last computed (a trailing average: 5.88 here, not
    # 6.00), so it may come one minute late: never more than one minute's burn below zero.
    assert at(11, 39) <= balance.hibernated_at <= at(11, 41)
    with time_machine.travel(at(12, 0), tick=False):
        meter(at(12, 0), django_capture_on_commit_callbacks)  # metering catches up
    balance.refresh_from_db()
    assert balance.amount >= Decimal("-0.10"), "more than one minute's burn below zero"


def test_the_projection_never_runs_ahead_of_a_balance_without_burn(org, credit):
    credit("1.00")
    balance = Balance.objects.get(organization=org)
    assert hibernation.projected_amount(balance, now=at(12, 0)) == Decimal("1.00")
    assert hibernation.hibernation_candidates(now=at(12, 0)) == []
