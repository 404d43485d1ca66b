"""The hard cap: at the cap the organisation's running resources hibernate through credits'
signed provisioning outbox, once; raising the cap or the month turning resumes them."""

from decimal import Decimal

import pytest
import time_machine

from budgets import services
from budgets.models import Budget
from budgets.tests.factories import make_budget
from credits.models import Balance, ProvisioningAction, ProvisioningRequest
from usage.models import Resource

from .conftest import at

pytestmark = pytest.mark.django_db


def update(budget, now, **values):
    with time_machine.travel(now, tick=False):
        return services.budget_update(budget=budget, now=now, **values)


def requests_of(org):
    return [(r.action, r.payload["resource_ids"], r.payload["reason"])
            for r in ProvisioningRequest.objects.filter(organization=org).order_by("id")]


def test_the_cap_hibernates_once_and_raising_it_resumes(org, gpu, start_server, tick):
    budget = make_budget(org, cap_amount=Decimal("8.00"))
    server = start_server(org, gpu, at(0, 0))
    tick(at(7, 0))
    assert Resource.objects.get(pk=server.pk).state == "running"  # 7.00 < 8.00
    tick(at(8, 0))
    tick(at(8, 0))  # a rerun hibernates nothing more
    tick(at(9, 0))
    server.refresh_from_db()
    assert server.state == "hibernated"
    reason = "Budget cap reached: $8.00 of $8.00 (\u201cMonthly\u201d)"
    assert requests_of(org) == [(ProvisioningAction.HIBERNATE, [server.pk], reason)]
    budget.refresh_from_db()
    assert (budget.capped_at, budget.capped_resources, budget.actual) == (at(8, 0), [server.pk], Decimal("8.00"))
    # A server started while capped is hibernated at the next pass.
    late = start_server(org, gpu, at(9, 10), external_id="srv-2")
    tick(at(9, 15))
    assert Resource.objects.get(pk=late.pk).state == "hibernated"
    update(budget, at(9, 20), cap_amount=Decimal("20.00"))
    assert Resource.objects.filter(organization=org, state="running").count() == 2
    assert [r[0] for r in requests_of(org)] == ["hibernate", "hibernate", "resume"]
    assert requests_of(org)[-1][1] == [server.pk, late.pk]
    budget.refresh_from_db()
    assert (budget.capped_at, budget.capped_resources) == (None, [])
    tick(at(9, 25))  # under the new cap: nothing
    assert len(requests_of(org)) == 3


def test_the_month_turn_resumes(org, gpu, start_server, tick):
    make_budget(org, cap_amount=Decimal("8.00"))
    server = start_server(org, gpu, at(12, 0, day=31))
    tick(at(20, 0, day=31))
    assert Resource.objects.get(pk=server.pk).state == "hibernated"
    tick(at(0, 5, day=1, month=4))
    tick(at(0, 10, day=1, month=4))  # once
    assert Resource.objects.get(pk=server.pk).state == "running"
    assert [r[0] for r in requests_of(org)] == ["hibernate", "resume"]
    assert requests_of(org)[-1][2] == "Budget cap lifted (month turned): \u201cMonthly\u201d"


def test_resources_credit_hibernation_holds_are_handed_to_it_not_woken(org, gpu, start_server, tick):
    budget = make_budget(org, cap_amount=Decimal("8.00"))
    server = start_server(org, gpu, at(0, 0))
    tick(at(8, 0))
    Balance.objects.create(organization=org, currency=org.currency, amount=Decimal("-1"), hibernated_at=at(8, 30))
    update(budget, at(9, 0), cap_amount=None)
    assert Resource.objects.get(pk=server.pk).state == "hibernated"
    assert Balance.objects.get(organization=org).hibernated_resources == [server.pk]
    assert [r[0] for r in requests_of(org)] == ["hibernate"]


def test_another_capped_budget_keeps_them_asleep(org, gpu, start_server, tick):
    first = make_budget(org, cap_amount=Decimal("8.00"))
    second = make_budget(org, name="Second", cap_amount=Decimal("6.00"))
    server = start_server(org, gpu, at(0, 0))
    tick(at(8, 0))
    update(first, at(8, 10), cap_amount=None)
    assert Resource.objects.get(pk=server.pk).state == "hibernated"
    with time_machine.travel(at(8, 20), tick=False):
        services.budget_delete(budget=Budget.objects.get(pk=second.pk), now=at(8, 20))
    assert Resource.objects.get(pk=server.pk).state == "running"


def test_runway_admission_refuses_a_start_while_the_cap_holds(org, gpu, start_server, tick):
    """The platform asks POST /api/v1/admission before it starts anything: while a hard
    cap holds this month the answer is budget_cap_reached (a start would be hibernated at
    the next evaluation); once the cap is raised the answer is the runway's again."""
    from credits.admission import admit

    budget = make_budget(org, cap_amount=Decimal("8.00"))
    start_server(org, gpu, at(0, 0))
    tick(at(8, 0))
    with time_machine.travel(at(8, 30), tick=False):
        d = admit(organization=org, product=gpu)
    assert (d.allowed, d.reason) == (False, "budget_cap_reached")
    assert d.message == "The budget \u201cMonthly\u201d reached its hard cap of 8.00 this month."
    update(budget, at(9, 0), cap_amount=Decimal("20.00"))
    with time_machine.travel(at(9, 5), tick=False):
        assert admit(organization=org, product=gpu).reason != "budget_cap_reached"
    with time_machine.travel(at(0, 5, day=1, month=4), tick=False):  # a cap of March holds no start in April
        Budget.objects.filter(pk=budget.pk).update(capped_at=at(8, 0), capped_month=at(8, 0).date().replace(day=1))
        assert admit(organization=org, product=gpu).reason != "budget_cap_reached"


def test_the_cap_tells_the_webhook_endpoints_what_it_hibernated_and_resumed(org, gpu, start_server, tick):
    """Issue 18's catalogue: resource.hibernated and resource.resumed come from the cap too,
    with the same resource ids and reason as the provisioning requests, each once."""
    from webhooks.models import WebhookMessage
    from webhooks.tests.factories import make_endpoint

    make_endpoint(org, event_types=["resource.hibernated", "resource.resumed"])
    budget = make_budget(org, cap_amount=Decimal("8.00"))
    server = start_server(org, gpu, at(0, 0))
    tick(at(9, 0))
    tick(at(9, 5))  # a rerun: nothing more
    update(budget, at(9, 20), cap_amount=Decimal("20.00"))
    sent = [(m.event_type, m.data["resource_ids"], m.data["reason"])
            for m in WebhookMessage.objects.filter(organization=org).order_by("id")]
    event_of = {ProvisioningAction.HIBERNATE: "resource.hibernated", ProvisioningAction.RESUME: "resource.resumed"}
    assert sent == [(event_of[action], ids, reason) for action, ids, reason in requests_of(org)]
    assert [s[0] for s in sent] == ["resource.hibernated", "resource.resumed"] and sent[0][1] == [server.pk]
