"""/api/v1/budgets: CRUD in the organisation's currency, another organisation's budget is
a 404, bad input a 400 in the one error format, answers match the schema."""

from decimal import Decimal

import pytest

from accounts.tests.factories import make_api_key
from budgets.models import Budget
from budgets.tests.factories import make_budget

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_for():
    from rest_framework.test import APIClient

    def _client(org, scopes):
        _key, raw = make_api_key(org, scopes=scopes)
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return c

    return _client


def test_create_read_update_delete(org, client_for):
    api = client_for(org, ["billing:read", "billing:write"])
    r = api.post("/api/v1/budgets", {"name": "GPUs", "amount": "1000.00", "actual_thresholds": [100, 50, 80],
                                     "recipient_emails": ["Ops@Example.com"], "cap_amount": "1200.00"},
                 format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["currency"], body["amount"], body["actual_thresholds"], body["forecast_thresholds"],
            body["recipient_roles"], body["recipient_emails"], body["cap_amount"], body["actual"]) == (
        "USD", "1000.00", [50, 80, 100], [100], ["owner", "billing"], ["ops@example.com"], "1200.00", None)
    pk = body["id"]
    assert api.get(f"/api/v1/budgets/{pk}").json()["name"] == "GPUs"
    assert [b["id"] for b in api.get("/api/v1/budgets").json()["results"]] == [pk]
    r = api.patch(f"/api/v1/budgets/{pk}", {"amount": "1500", "cap_amount": None}, format="json")
    assert r.status_code == 200, r.content
    assert (r.json()["amount"], r.json()["cap_amount"]) == ("1500.00", None)
    assert api.delete(f"/api/v1/budgets/{pk}").status_code == 204
    assert not Budget.objects.exists()


def test_another_organisations_budget_is_a_404(org, other_org, client_for):
    theirs = make_budget(other_org)
    api = client_for(org, ["billing:read", "billing:write"])
    assert api.get(f"/api/v1/budgets/{theirs.pk}").status_code == 404
    assert api.patch(f"/api/v1/budgets/{theirs.pk}", {"amount": "5"}, format="json").status_code == 404
    assert api.delete(f"/api/v1/budgets/{theirs.pk}").status_code == 404
    assert api.get("/api/v1/budgets").json()["results"] == []
    r = api.post("/api/v1/budgets", {"name": "x", "amount": "5", "organization": other_org.pk}, format="json")
    assert r.status_code == 404
    assert Budget.objects.filter(organization=other_org).count() == 1


def test_read_scope_cannot_change(org, client_for):
    api = client_for(org, ["billing:read"])
    assert api.post("/api/v1/budgets", {"name": "x", "amount": "5"}, format="json").status_code == 403


@pytest.mark.parametrize("body, field", [
    ({"name": "x", "amount": "0"}, "amount"),
    ({"name": "x", "amount": "10.005"}, "amount"),
    ({"name": "x", "amount": "NaN"}, "amount"),
    ({"name": "x", "amount": "10", "actual_thresholds": [0]}, "actual_thresholds"),
    ({"name": "x", "amount": "10", "recipient_roles": ["boss"]}, "recipient_roles"),
    ({"name": "x", "amount": "10", "recipient_emails": ["not-an-email"]}, "recipient_emails"),
    ({"name": "x", "amount": "10", "cap_amount": "-1"}, "cap_amount"),
    ({"amount": "10"}, "name"),
    ({"name": "x", "amount": "10", "colour": "red"}, None),
])
def test_bad_input_is_a_400_in_the_error_format(org, client_for, body, field):
    api = client_for(org, ["billing:read", "billing:write"])
    r = api.post("/api/v1/budgets", body, format="json")
    assert r.status_code == 400, r.content
    err = r.json()["error"]
    assert err["code"]
    if field:
        assert field in str(err), err


@pytest.fixture(scope="module")
def schema(tmp_path_factory, django_db_blocker) -> dict:
    import yaml
    from django.core.management import call_command

    out = tmp_path_factory.mktemp("schema") / "schema.yml"
    with django_db_blocker.unblock():
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    return yaml.safe_load(out.read_text())


def test_answers_match_the_schema(org, client_for, schema):
    from core.tests.test_schema import assert_answer_matches_schema

    api = client_for(org, ["billing:read", "billing:write"])
    created = api.post("/api/v1/budgets", {"name": "GPUs", "amount": "10"}, format="json")
    assert_answer_matches_schema(schema, "/api/v1/budgets", "post", created)
    budget = Budget.objects.get(pk=created.json()["id"])
    budget.actual, budget.forecast = Decimal("5.123456789012"), Decimal("9")
    budget.save()
    pk = budget.pk
    assert_answer_matches_schema(schema, "/api/v1/budgets/{id}", "get", api.get(f"/api/v1/budgets/{pk}"))
    assert api.get(f"/api/v1/budgets/{pk}").json()["actual"] == "5.12"
    assert_answer_matches_schema(schema, "/api/v1/budgets", "get", api.get("/api/v1/budgets"))
    assert_answer_matches_schema(schema, "/api/v1/budgets/{id}", "patch",
                                 api.patch(f"/api/v1/budgets/{pk}", {"amount": "20"}, format="json"))
    assert_answer_matches_schema(schema, "/api/v1/budgets/{id}", "patch",
                                 api.patch(f"/api/v1/budgets/{pk}", {"amount": "-1"}, format="json"))
    assert_answer_matches_schema(schema, "/api/v1/budgets/{id}", "get", api.get("/api/v1/budgets/999999"))
    assert_answer_matches_schema(schema, "/api/v1/budgets/{id}", "delete", api.delete(f"/api/v1/budgets/{pk}"))
