"""Project budgets on real metering with a moving clock: two projects, one $1.00/h server
in each (and one in none). A project budget counts its project's spend only (its
resources' invoice cents, as the spend explorer's per-project breakdown), sends each
alert once per crossing naming the project, and its hard cap hibernates that project's
resources only, through the signed provisioning outbox; runway admission refuses starts
in that project only. The project field is checked against the organisation (API,
portal, console)."""

from decimal import Decimal

import pytest
import time_machine
from django.core import mail

from budgets import services
from budgets.models import Budget, BudgetScope
from budgets.tests.factories import make_budget
from credits.models import Balance, ProvisioningAction, ProvisioningRequest
from usage.models import Project, Resource

from .conftest import at

pytestmark = pytest.mark.django_db


@pytest.fixture
def projects(org):
    return (Project.objects.create(organization=org, slug="training", name="Training"),
            Project.objects.create(organization=org, slug="serving", name="Serving"))


@pytest.fixture
def fleet(org, gpu, start_server, projects):
    """srv-t in Training, srv-s in Serving, srv-n in no project: all running from 00:00."""
    training, serving = projects
    servers = {}
    for external_id, project in (("srv-t", training), ("srv-s", serving), ("srv-n", None)):
        server = start_server(org, gpu, at(0, 0), external_id=external_id)
        Resource.objects.filter(pk=server.pk).update(project=project)
        servers[external_id] = server
    return servers


def states(org):
    return dict(Resource.objects.filter(organization=org).values_list("external_id", "state"))


def requests_of(org):
    return [(r.action, r.payload["resource_ids"], r.payload["reason"])
            for r in ProvisioningRequest.objects.filter(organization=org).order_by("id")]


def update(budget, now, **values):
    with time_machine.travel(now, tick=False):
        return services.budget_update(budget=Budget.objects.get(pk=budget.pk), now=now, **values)


def test_a_project_budget_counts_its_project_and_alerts_once_per_crossing(org, owner, fleet, projects, tick):
    from webhooks.models import WebhookMessage
    from webhooks.tests.factories import make_endpoint

    make_endpoint(org, event_types=["budget.threshold_crossed"])
    training, _serving = projects
    budget = make_budget(org, project=training, forecast_thresholds=[], recipient_emails=["ml@example.com"])
    whole = make_budget(org, name="Everything", amount=Decimal("20.00"), forecast_thresholds=[])
    assert (budget.scope, budget.project_id, whole.scope, whole.project_id) == (
        BudgetScope.PROJECT, training.pk, BudgetScope.ORGANIZATION, None)
    tick(at(1, 0))
    budget.refresh_from_db()
    whole.refresh_from_db()
    # Three servers at $1.00/h: the organisation spent 3.00, Training 1.00 of it, and
    # Training's forecast is 1.00 + $1.00/h over the 527 h left to 1 April.
    assert (whole.actual, budget.actual, budget.forecast) == (Decimal("3.00"), Decimal("1.00"), Decimal("528.00"))
    for hour in range(2, 12):
        tick(at(hour, 0))
    tick(at(11, 0))  # a rerun sends nothing
    budget.refresh_from_db()
    assert budget.actual == Decimal("11.00")
    assert [(a.kind, a.threshold, a.spend) for a in budget.alerts.order_by("id")] == [
        ("actual", 50, Decimal("5.00")), ("actual", 80, Decimal("8.00")), ("actual", 100, Decimal("10.00"))]
    # The organisation's budget sees all three servers ($3.00 an hour).
    assert [(a.threshold, a.spend) for a in Budget.objects.get(pk=whole.pk).alerts.order_by("id")] == [
        (50, Decimal("12.00")), (80, Decimal("18.00")), (100, Decimal("21.00"))]
    mine = [m for m in mail.outbox if "ml@example.com" in m.to]
    assert len(mine) == 3
    assert "Spend this month in the project \u201cTraining\u201d is $5.00: 50% of the budget" in mine[0].body
    assert mine[0].subject.endswith(", project Training")
    hooks = WebhookMessage.objects.filter(event_type="budget.threshold_crossed").order_by("id")
    assert [(m.data["budget_id"], m.data["scope"], m.data["threshold"]) for m in hooks
            if m.data["budget_id"] == budget.pk] == [
        (budget.pk, "project", 50), (budget.pk, "project", 80), (budget.pk, "project", 100)]


def test_the_cap_hibernates_its_projects_resources_only_and_raising_it_resumes_them(org, fleet, projects, tick):
    training, _serving = projects
    budget = make_budget(org, project=training, cap_amount=Decimal("4.00"))
    tick(at(3, 0))
    assert set(states(org).values()) == {"running"}  # Training 3.00 < 4.00 (the organisation: 9.00)
    tick(at(4, 0))
    tick(at(4, 0))  # a rerun hibernates nothing more
    assert states(org) == {"srv-t": "hibernated", "srv-s": "running", "srv-n": "running"}
    reason = "Budget cap reached: $4.00 of $4.00 (\u201cMonthly\u201d, project \u201cTraining\u201d)"
    assert requests_of(org) == [(ProvisioningAction.HIBERNATE, [fleet["srv-t"].pk], reason)]
    # A server started in Training while capped is hibernated at the next pass; one in
    # Serving is not.
    late = _start_in(org, fleet, training, "srv-t2", at(4, 10))
    _start_in(org, fleet, projects[1], "srv-s2", at(4, 10))
    tick(at(4, 15))
    assert (states(org)["srv-t2"], states(org)["srv-s2"]) == ("hibernated", "running")
    update(budget, at(4, 20), cap_amount=Decimal("50.00"))
    assert set(states(org).values()) == {"running"}
    assert requests_of(org)[-1][:2] == (ProvisioningAction.RESUME, [fleet["srv-t"].pk, late.pk])
    assert requests_of(org)[-1][2] == "Budget cap lifted (cap raised): \u201cMonthly\u201d, project \u201cTraining\u201d"


def _start_in(org, fleet, project, external_id, since):
    from usage import services as usage_services
    from usage.models import StateSource

    product = fleet["srv-t"].product
    with time_machine.travel(since, tick=False):
        resource = usage_services.resource_create(organization=org, external_id=external_id, product=product,
                                                  at=since, source=StateSource.EVENT)
        Resource.objects.filter(pk=resource.pk).update(project=project)
        return usage_services.resource_change_state(resource=Resource.objects.get(pk=resource.pk), state="running",
                                                    at=since, source=StateSource.EVENT)


def test_the_month_turn_resumes_the_project(org, fleet, projects, tick):
    make_budget(org, project=projects[0], cap_amount=Decimal("4.00"))
    tick(at(4, 0, day=31))
    assert states(org)["srv-t"] == "hibernated"
    tick(at(0, 5, day=1, month=4))
    tick(at(0, 10, day=1, month=4))  # once
    assert set(states(org).values()) == {"running"}
    assert [r[0] for r in requests_of(org)] == ["hibernate", "resume"]


def test_what_another_budget_or_credit_hibernation_holds_is_not_woken(org, fleet, projects, tick):
    training, serving = projects
    mine = make_budget(org, project=training, cap_amount=Decimal("2.00"))
    theirs = make_budget(org, name="Serving cap", project=serving, cap_amount=Decimal("3.00"))
    tick(at(3, 0))
    assert states(org) == {"srv-t": "hibernated", "srv-s": "hibernated", "srv-n": "running"}
    # Serving's cap does not cover Training: lifting Training's wakes srv-t...
    update(mine, at(3, 10), cap_amount=None)
    assert states(org) == {"srv-t": "running", "srv-s": "hibernated", "srv-n": "running"}
    # ...an organisation cap covers every project: it holds them.
    whole = make_budget(org, name="Everything", cap_amount=Decimal("5.00"))
    tick(at(3, 20))  # 3 + 3 + 3 = 9.00 ≥ 5.00: srv-t and srv-n hibernate
    assert set(states(org).values()) == {"hibernated"}
    update(theirs, at(3, 30), cap_amount=None)
    assert states(org)["srv-s"] == "hibernated"
    assert sorted(Budget.objects.get(pk=whole.pk).capped_resources) == sorted(
        [fleet["srv-t"].pk, fleet["srv-n"].pk, fleet["srv-s"].pk])
    # Credit hibernation holds what the organisation's cap lets go.
    Balance.objects.create(organization=org, currency=org.currency, amount=Decimal("-1"), hibernated_at=at(3, 40))
    update(whole, at(3, 50), cap_amount=None)
    assert set(states(org).values()) == {"hibernated"}
    assert sorted(Balance.objects.get(organization=org).hibernated_resources) == sorted(
        r.pk for r in fleet.values())


def test_runway_admission_refuses_starts_in_the_capped_project_only(org, gpu, fleet, projects, tick, make_key, api):
    from credits.admission import admit

    make_budget(org, project=projects[0], cap_amount=Decimal("4.00"))
    tick(at(4, 0))
    with time_machine.travel(at(4, 30), tick=False):
        refused = admit(organization=org, product=gpu, project="training")
        assert (refused.allowed, refused.reason) == (False, "budget_cap_reached")
        assert refused.message == ("The budget \u201cMonthly\u201d of the project \u201cTraining\u201d reached its "
                                   "hard cap of 4.00 this month.")
        assert admit(organization=org, product=gpu, project="serving").reason != "budget_cap_reached"
        assert admit(organization=org, product=gpu).reason != "budget_cap_reached"
        assert admit(organization=org, product=gpu, project="new-one").reason != "budget_cap_reached"
        platform = api(make_key(None, ["admission:check"]))
        body = {"organization": org.pk, "product": gpu.code}
        r = platform.post("/api/v1/admission", {**body, "project": "training"}, format="json")
        assert r.status_code == 200, r.content
        assert (r.json()["allowed"], r.json()["reason"]) == (False, "budget_cap_reached")
        for other in ({**body, "project": "serving"}, {**body, "project": None}, body):
            r = platform.post("/api/v1/admission", other, format="json")
            assert r.status_code == 200 and r.json()["reason"] != "budget_cap_reached", (other, r.content)
        r = platform.post("/api/v1/admission", {**body, "project": "Not A Slug"}, format="json")
        assert r.status_code == 400 and "project" in r.json()["error"]["fields"]


def test_the_admission_schema_documents_project(org):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    request = schema["components"]["schemas"]["AdmissionRequestRequest"]
    assert request["properties"]["project"]["nullable"] is True
    assert "project" not in request.get("required", [])


# --- the project field: the organisation's own projects only --------------------------------


def test_the_api_takes_a_project_of_the_organisation_only(org, other_org, projects, make_key, api):
    theirs = Project.objects.create(organization=other_org, slug="secret", name="Their secret project")
    Project.objects.create(organization=other_org, slug="training", name="Their training")
    mine = api(make_key(org, ["billing:read", "billing:write"]))
    r = mine.post("/api/v1/budgets", {"name": "Training", "amount": "100", "project": "training"}, format="json")
    assert r.status_code == 201, r.content
    assert (r.json()["scope"], r.json()["project"]) == ("project", "training")
    assert Budget.objects.get(pk=r.json()["id"]).project == projects[0]  # ours, not theirs of the same slug
    for slug in ("secret", "nope"):
        r = mine.post("/api/v1/budgets", {"name": "x", "amount": "100", "project": slug}, format="json")
        assert r.status_code == 400, r.content
        assert r.json()["error"]["fields"] == {"project": ["No such project."]}
        assert theirs.name not in r.content.decode()
    r = mine.post("/api/v1/budgets", {"name": "x", "amount": "100", "project": theirs.pk}, format="json")
    assert r.status_code == 400 and "project" in r.json()["error"]["fields"]
    # Set once: a change of project is an unknown field.
    pk = Budget.objects.get(organization=org).pk
    r = mine.patch(f"/api/v1/budgets/{pk}", {"project": "serving"}, format="json")
    assert r.status_code == 400
    assert Budget.objects.get(pk=pk).project == projects[0]
    # A platform key names the organisation, and the project is looked up in it.
    platform = api(make_key(None, ["billing:read", "billing:write"]))
    r = platform.post("/api/v1/budgets", {"name": "x", "amount": "5", "organization": org.pk, "project": "secret"},
                      format="json")
    assert r.status_code == 400 and "project" in r.json()["error"]["fields"]
    r = platform.post("/api/v1/budgets", {"name": "x", "amount": "5", "organization": other_org.pk,
                                          "project": "secret"}, format="json")
    assert r.status_code == 201 and r.json()["project"] == "secret"
    assert Budget.objects.filter(organization=org).count() == 1


def test_the_portal_offers_and_takes_the_organisations_projects_only(client, org, other_org, projects, make_member):
    theirs = Project.objects.create(organization=other_org, slug="secret", name="Their secret project")
    client.force_login(make_member(org, "billing").user)
    page = client.get("/budgets/").content.decode()
    assert "Project: Training" in page and "Project: Serving" in page and theirs.name not in page
    form = {"name": "Training GPUs", "amount": "100.00", "actual_thresholds": "50, 80, 100",
            "forecast_thresholds": "100", "recipient_roles": ["owner"], "recipient_emails": "", "cap_amount": "40"}
    r = client.post("/budgets/", {**form, "project": str(theirs.pk)})
    assert r.status_code == 400
    assert "Select a valid choice" in r.content.decode() and theirs.name not in r.content.decode()
    assert not Budget.objects.exists()
    r = client.post("/budgets/", {**form, "project": str(projects[0].pk)})
    assert r.status_code == 302, r.content.decode()[:2000]
    budget = Budget.objects.get(organization=org)
    assert (budget.scope, budget.project) == ("project", projects[0])
    page = client.get("/budgets/").content.decode()
    assert "Project \u201cTraining\u201d" in page
    detail = client.get(f"/budgets/{budget.pk}/").content.decode()
    assert "Project \u201cTraining\u201d" in detail and 'name="project"' not in detail  # set once
    r = client.post(f"/budgets/{budget.pk}/", {**form, "amount": "150", "project": str(projects[1].pk)})
    assert r.status_code == 302
    budget.refresh_from_db()
    assert (budget.amount, budget.project) == (Decimal("150.00"), projects[0])
    r = client.post("/budgets/", {**form, "name": "Everything", "project": ""})
    assert r.status_code == 302
    assert Budget.objects.get(name="Everything").scope == "organization"


def test_the_console_refuses_another_organisations_project(client, org, other_org, projects):
    from accounts.staff import BILLING_ADMIN
    from budgets.tests.test_console import _staff

    admin_client = client
    admin_client.force_login(_staff(BILLING_ADMIN))
    theirs = Project.objects.create(organization=other_org, slug="secret", name="Their secret project")
    form = {"organization": org.pk, "name": "Console", "amount": "100.00", "actual_thresholds": "50,80,100",
            "forecast_thresholds": "100", "recipient_roles": "owner", "recipient_emails": "", "cap_amount": ""}
    r = admin_client.post("/console/budgets/budget/add/", {**form, "project": theirs.pk})
    assert r.status_code == 200 and "No such project." in r.content.decode()
    assert not Budget.objects.exists()
    r = admin_client.post("/console/budgets/budget/add/", {**form, "project": projects[0].pk})
    assert r.status_code == 302, r.content.decode()[:3000]
    assert Budget.objects.get().project == projects[0]
    listing = admin_client.get("/console/budgets/budget/").content.decode()
    assert "Project \u201cTraining\u201d" in listing
