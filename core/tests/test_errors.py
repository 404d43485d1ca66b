"""One error format for every 4xx: {"error": {"code", "message", "fields"}}, and
`required_scope` beside them on a 403 for a missing scope."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.django_db


def _error(response, *extra: str) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields", *extra}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["fields"], dict)
    return body["error"]


def test_400_names_every_bad_field(platform_api):
    response = platform_api.post("/api/v1/organizations", {"name": "", "country": "germany", "credit_limit": "-1",
                                                           "extra": 1}, format="json")
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"name", "country", "credit_limit", "extra"}
    assert error["fields"]["extra"] == ["Unknown field."]


def test_400_for_a_body_that_is_not_an_object(platform_api):
    response = platform_api.post("/api/v1/organizations", [1, 2], format="json")
    assert response.status_code == 400
    assert _error(response)["code"] == "validation_error"


def test_400_for_malformed_json(platform_api):
    response = platform_api.generic("POST", "/api/v1/organizations", '{"name": ', content_type="application/json")
    assert response.status_code == 400 and _error(response)["code"] == "parse_error"


def test_415_for_a_form_post(platform_api):
    response = platform_api.post("/api/v1/organizations", {"name": "X"})  # multipart, not JSON
    assert response.status_code == 415 and _error(response)["code"] == "unsupported_media_type"


def test_401_without_credentials(client):
    response = client.get("/api/v1/organization")
    assert response.status_code == 401
    assert _error(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Bearer"


def test_401_for_an_empty_bearer(api):
    response = api().get("/api/v1/organization", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 401 and _error(response)["code"] == "authentication_failed"


def test_403_without_the_scope(org, make_key, api):
    response = api(make_key(org, ["usage:read"])).patch("/api/v1/organization", {"city": "X"}, format="json")
    assert response.status_code == 403
    assert _error(response, "required_scope") == {
        "code": "permission_denied", "message": "This key lacks the scope account:write.", "fields": {},
        "required_scope": "account:write",
    }


def test_403_for_a_platform_only_operation_names_its_scope(org_api):
    response = org_api.post("/api/v1/invoices/1/finalize", format="json")
    assert response.status_code == 403
    error = _error(response, "required_scope")
    assert error["required_scope"] == "invoices:write"
    assert error["message"] == "This key lacks the scope invoices:write."


def test_403_for_a_platform_key_without_the_scope_names_it(make_key, api):
    response = api(make_key(None, ["events:write"])).post("/api/v1/organizations", {"name": "A"}, format="json")
    assert response.status_code == 403
    assert _error(response, "required_scope")["required_scope"] == "organizations:write"


def test_403_for_a_key_whose_maker_lost_the_scope_says_so(org, make_member, api):
    from accounts import services
    from accounts.models import Membership
    from accounts.tenancy import membership_caller

    maker = make_member(org, "admin")
    _key, raw = services.api_key_create(name="ci", scopes=["account:write"], organization=org,
                                        by=membership_caller(maker))
    Membership.objects.filter(pk=maker.pk).update(role="viewer")
    response = api(raw).patch("/api/v1/organization", {"city": "X"}, format="json")
    assert response.status_code == 403
    error = _error(response, "required_scope")
    assert error["required_scope"] == "account:write"
    assert error["message"] == "This key has the scope account:write, but the member who made it no longer holds it."


def test_403_for_a_session_names_the_role_and_the_scope(org, make_member, client):
    viewer = make_member(org, "viewer").user
    client.force_login(viewer)
    response = client.patch("/api/v1/organization", {"city": "X"}, content_type="application/json")
    assert response.status_code == 403
    error = _error(response, "required_scope")
    assert error == {"code": "permission_denied", "message": "Your role (viewer) lacks the scope account:write.",
                     "fields": {}, "required_scope": "account:write"}


def test_404_for_an_unknown_object(org_api):
    response = org_api.get("/api/v1/organizations/999999")
    assert response.status_code == 404 and _error(response)["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/api/v1/organizations/abc/members/1x", "/api/nothing"])
def test_404_for_an_unknown_endpoint_is_json_too(org_api, path):
    response = org_api.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert _error(response)["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing/", "/api/v1/organizations/abc/members/1x", "/api/nothing"])
def test_404_for_an_unknown_endpoint_is_json_with_debug_on_as_in_the_demo(org_api, settings, path):
    settings.DEBUG = True  # `make run`: Django would answer with its HTML page listing every URL
    response = org_api.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert _error(response)["code"] == "not_found"


def test_404_outside_the_api_is_a_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and b"Not found" in response.content


def test_405_for_a_method_the_endpoint_lacks(org_api):
    response = org_api.put("/api/v1/organization", {}, format="json")
    assert response.status_code == 405
    assert _error(response)["code"] == "method_not_allowed"


def test_409_for_a_broken_rule(org, org_api, owner):
    from accounts.models import Membership

    membership = Membership.objects.get(user=owner)
    response = org_api.delete(f"/api/v1/organizations/{org.pk}/members/{membership.pk}")
    assert response.status_code == 409 and _error(response)["code"] == "conflict"


def test_422_for_a_reused_idempotency_key(platform_api):
    platform_api.post("/api/v1/organizations", {"name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    response = platform_api.post("/api/v1/organizations", {"name": "B"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 422 and _error(response)["code"] == "idempotency_key_reused"


def test_a_bad_idempotency_key_is_a_400_on_the_header(platform_api):
    response = platform_api.post("/api/v1/organizations", {"name": "A"}, format="json",
                                 HTTP_IDEMPOTENCY_KEY="x" * 300)
    assert response.status_code == 400 and "Idempotency-Key" in _error(response)["fields"]


def test_unexpected_errors_under_the_api_are_json_500(client, settings):
    from django.test import RequestFactory

    from core.views import server_error

    response = server_error(RequestFactory().get("/api/v1/organization"))
    assert response.status_code == 500
    assert json.loads(response.content)["error"]["code"] == "server_error"


@pytest.mark.parametrize("offset", ["+16:32", "-15:59", "+00:00", "Z"])
def test_datetime_filters_accept_any_offset_python_parses(platform_api, org, offset):
    """PostgreSQL refuses offsets beyond ±15:59; the filter backend converts to UTC first."""
    response = platform_api.get("/api/v1/organizations", {"created_at__gte": f"2000-01-01T00:00:00{offset}"})
    assert response.status_code == 200
    assert org.pk in {row["id"] for row in response.json()["results"]}


def test_a_datetime_filter_that_cannot_be_converted_is_a_400(platform_api):
    response = platform_api.get("/api/v1/organizations", {"created_at__lt": "0001-01-01T00:00:00+10:00"})
    assert response.status_code == 400
    assert _error(response)["fields"] == {"created_at__lt": ["This date and time is out of range."]}


def test_400_names_a_nested_field_by_its_dotted_path(platform_api):
    from pricing.tests.factories import ProductFactory

    ProductFactory(code="egress", kind="bandwidth", billing_model="overage", vcpus=None)
    response = platform_api.post("/api/v1/prices", {
        "product": "egress", "currency": "USD", "unit": "gb", "pricing_model": "graduated",
        "valid_from": "2030-01-01T00:00:00Z",
        "tiers": [{"up_to": "100", "unit_amount": "0.01"}, {"up_to": "-1", "unit_amount": "0.005"}],
    }, format="json")
    assert response.status_code == 400
    fields = _error(response)["fields"]
    assert "tiers.1.up_to" in fields, fields
    assert all(isinstance(m, list) and all(isinstance(x, str) for x in m) for m in fields.values()), fields
