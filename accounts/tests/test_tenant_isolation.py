"""Tenant isolation, by construction: every API route and portal page that takes an
object's id is found by walking the URL conf, the object is made for another
organisation through the tenancy registry (accounts/tests/tenancy.py), and the route
must answer 404 to an organisation key and to a member's session. List endpoints must
not show another organisation's rows. A route added later joins these tests without
anyone editing this file; a route whose model has no registered factory fails here.

Routes over data every customer may read (the public price book) opt out by naming why:
`tenant_isolation_exempt = "..."` on the view class (API) or the view function (portal).
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import AuditLog, Organization
from accounts.scopes import ROLE_SCOPES, Role
from accounts.tests.factories import make_api_key
from accounts.tests.routes import (
    ALL_ROUTES,
    UNSAFE_METHODS,
    api_methods,
    api_model,
    exempt,
    is_api,
    kwarg_value,
    lookup,
    required_scope,
)
from accounts.tests.tenancy import load_tenant_factories, make_for

load_tenant_factories()

API_ID_ROUTES = [r for r in ALL_ROUTES if is_api(r) and r.kwargs and not exempt(r)]
API_LIST_ROUTES = [
    r for r in ALL_ROUTES
    if is_api(r) and not r.kwargs and getattr(r.callback, "actions", {}).get("get") == "list" and not exempt(r)
]
PORTAL_ID_ROUTES = [
    r for r in ALL_ROUTES
    if not is_api(r) and r.int_kwargs and not r.name.startswith("admin:") and not exempt(r)
]


@pytest.fixture
def callers(org, make_member):
    """An organisation key and an owner's portal session, both of `org`, with every organisation scope."""
    key_client = APIClient()
    key_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(org)[1]}")
    session_client = APIClient()
    session_client.force_login(make_member(org, Role.OWNER).user)
    return {"organisation key": key_client, "member session": session_client}


def _foreign_writes(other_org: Organization) -> int:
    return AuditLog.objects.filter(organization=other_org).count()


@pytest.mark.django_db
@pytest.mark.parametrize("route", API_ID_ROUTES, ids=str)
def test_api_route_answers_404_for_another_organisations_object(route, org, other_org, callers):
    model = api_model(route)
    view_class = route.callback.cls
    foreign = make_for(model, other_org)
    own = make_for(model, org)
    audit_before = _foreign_writes(other_org)
    lookup_kwarg = lookup(view_class)[0]

    variants = [{k: kwarg_value(route, k, foreign, view_class) for k in route.kwargs}]
    if lookup_kwarg in route.kwargs and len(route.kwargs) > 1:
        # The caller's own parent with the other organisation's object in it.
        variants.append({
            k: kwarg_value(route, k, foreign if k == lookup_kwarg else own, view_class) for k in route.kwargs
        })

    for caller_name, client in callers.items():
        for kwargs in variants:
            url = reverse(route.name, kwargs=kwargs)
            for method, action in api_methods(route):
                scope = required_scope(view_class, method, action)
                expected = {404} if scope in ROLE_SCOPES[Role.OWNER] or scope == "authenticated" else {403, 404}
                body = {} if method in UNSAFE_METHODS else None
                response = getattr(client, method)(url, body, format="json") if body is not None else client.get(url)
                assert response.status_code in expected, (
                    f"{method.upper()} {url} by an {caller_name} of another organisation answered "
                    f"{response.status_code}, not 404: {response.content[:300]!r}"
                )
    assert model.objects.filter(pk=foreign.pk).exists()
    assert _foreign_writes(other_org) == audit_before, f"{route} wrote to another organisation"


@pytest.mark.django_db
@pytest.mark.parametrize("route", API_LIST_ROUTES, ids=str)
def test_api_list_shows_no_rows_of_another_organisation(route, org, other_org, callers):
    model = api_model(route)
    view_class = route.callback.cls
    _url_kwarg, field_name = lookup(view_class)
    response_field = "id" if field_name == "pk" else field_name
    foreign, own = make_for(model, other_org), make_for(model, org)
    url = reverse(route.name)
    scope = required_scope(view_class, "get", "list")
    for caller_name, client in callers.items():
        response = client.get(url, {"page_size": 500})
        if scope not in ROLE_SCOPES[Role.OWNER] and response.status_code == 403:
            continue
        assert response.status_code == 200, f"GET {url} by an {caller_name}: {response.status_code}"
        body = response.json()
        rows = body["results"] if isinstance(body, dict) and "results" in body else body
        seen = {row.get(response_field) for row in rows}
        assert getattr(foreign, field_name) not in seen, f"GET {url} by an {caller_name} lists another organisation's row"
        assert getattr(own, field_name) in seen, (
            f"GET {url} by an {caller_name} does not list its own row: the tenancy factory for {model._meta.label} "
            f"should make a row the organisation can see, so this test proves something"
        )


@pytest.mark.django_db
@pytest.mark.parametrize("route", PORTAL_ID_ROUTES, ids=str)
def test_portal_page_answers_404_for_another_organisations_object(route, client, org, other_org, make_member):
    model = getattr(route.callback, "portal_model", None)
    if model is None:
        pytest.fail(
            f"{route}: a portal page that takes an id must be a portal_view(scope, model=Model), so the "
            f"isolation test can make that model for another organisation."
        )
    foreign = make_for(model, other_org)
    audit_before = _foreign_writes(other_org)
    client.force_login(make_member(org, Role.OWNER).user)
    url = reverse(route.name, kwargs={k: kwarg_value(route, k, foreign) for k in route.kwargs})
    response = client.get(url)
    if response.status_code == 405:
        response = client.post(url, {})
    assert response.status_code == 404, (
        f"{url} answered {response.status_code} to an owner of another organisation, not 404"
    )
    assert model.objects.filter(pk=foreign.pk).exists()
    assert _foreign_writes(other_org) == audit_before, f"{route} wrote to another organisation"


def test_the_walker_finds_the_routes_that_exist_today():
    names = {r.name for r in API_ID_ROUTES}
    assert {"organization-detail", "member-list", "member-detail", "api-key-detail"} <= names
    assert {"organization-list", "api-key-list"} <= {r.name for r in API_LIST_ROUTES}
    assert {
        "portal:member_role", "portal:member_remove", "portal:invitation_revoke", "portal:api_key_revoke",
    } <= {r.name for r in PORTAL_ID_ROUTES}


def test_a_model_without_a_registered_factory_fails_with_instructions(org):
    with pytest.raises(LookupError, match=r"Register one in accounts/tests/factories.py"):
        make_for(AuditLog, org)


NO_SUCH_ID = 2_000_000_000


def _filter_models(route):
    """Query-string filters of a list route that name another row: field -> model."""
    view_class = route.callback.cls
    model = api_model(route)
    found = {}
    for name in getattr(view_class, "filterset_fields", None) or []:
        field = model._meta.get_field(name) if name in {f.name for f in model._meta.get_fields()} else None
        if field is not None and field.is_relation and field.related_model is not None:
            found[name] = field.related_model
    if getattr(view_class, "organization_param", True):
        found.setdefault("organization", Organization)
    return found


ID_PARAM_CASES = [
    pytest.param(route, name, related, id=f"{route}?{name}")
    for route in ALL_ROUTES
    if is_api(route) and getattr(route.callback, "actions", {}).get("get") in ("list", None)
    and not exempt(route) and hasattr(route.callback.cls, "queryset")
    for name, related in _filter_models(route).items()
]


def _answer(response):
    try:
        body = response.json()
    except ValueError:
        body = response.content
    return response.status_code, body


@pytest.mark.django_db
@pytest.mark.parametrize(("route", "param", "related"), ID_PARAM_CASES)
def test_another_organisations_id_in_a_query_string_answers_as_an_id_that_exists_nowhere(
    route, param, related, org, other_org, callers
):
    """`?invoice=<another organisation's invoice>` must not be told apart from an id of no row:
    the same status and body, never the other organisation's rows."""
    try:
        foreign = other_org if related is Organization else make_for(related, other_org)
    except LookupError:
        pytest.skip(f"no tenancy factory for {related._meta.label}")
    own_kwargs = {}
    if route.kwargs:
        model = api_model(route)
        own = make_for(model, org)
        own_kwargs = {k: kwarg_value(route, k, own, route.callback.cls) for k in route.kwargs}
    url = reverse(route.name, kwargs=own_kwargs)
    for caller_name, client in callers.items():
        nowhere = _answer(client.get(url, {param: NO_SUCH_ID}))
        theirs = _answer(client.get(url, {param: foreign.pk}))
        if isinstance(nowhere[1], dict) and isinstance(theirs[1], dict):
            # The message may quote the id; compare everything else.
            for body in (nowhere[1], theirs[1]):
                body.get("error", {}).pop("message", None)
        assert theirs[0] == nowhere[0] and theirs[1] == nowhere[1], (
            f"GET {url}?{param}=<{other_org}'s {related.__name__}> by an {caller_name} answered "
            f"{theirs[0]} {str(theirs[1])[:300]}, an id of no row {nowhere[0]} {str(nowhere[1])[:300]}"
        )


# --- ids in JSON bodies ---------------------------------------------------------------

# A body that is valid but for the id under test, per operation whose body names another
# row; "{product}" is replaced by a product's code. An operation the walk finds without a
# row here fails with instructions, so a new body id cannot slip past this test.
BODY_ID_CASES_BODIES: dict[str, dict] = {
    "POST /api/v1/admission": {"product": "{product}"},
    "POST /api/v1/contracts": {"name": "Isolation", "valid_from": "2026-01-01T00:00:00Z", "prices": []},
    "POST /api/v1/budgets": {"name": "Isolation", "amount": "10.00"},
    "POST /api/v1/credits/adjustments": {"amount": "5.00", "reason": "Isolation test"},
    "POST /api/v1/credits/promotional-grants": {"amount": "5.00", "reason": "Isolation test"},
    "POST /api/v1/credits/topups": {"amount": "10.00"},
    "POST /api/v1/quotes": {"product": "{product}", "duration_minutes": 60},
    "POST /api/v1/webhook-endpoints": {"url": "http://127.0.0.1:9/hook", "event_types": ["invoice.paid"]},
}


def _body_id_fields() -> list[tuple[str, str, type]]:
    """(operation, body field, model) for every POST/PUT/PATCH whose documented body takes
    the id of another row: an integer field (or list of them) named after a model."""
    from django.apps import apps
    from drf_spectacular.generators import SchemaGenerator

    models_by_name = {m._meta.model_name: m for m in apps.get_models()}
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method not in {"post", "put", "patch"} or "requestBody" not in operation:
                continue
            ref = operation["requestBody"]["content"]["application/json"]["schema"].get("$ref", "")
            properties = components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
            for name, prop in properties.items():
                if prop.get("readOnly"):
                    continue
                integer = prop.get("type") == "integer" or prop.get("items", {}).get("type") == "integer"
                model = models_by_name.get(name.removesuffix("_ids").removesuffix("_id").replace("_", ""))
                if integer and model is not None:
                    found.append((f"{method.upper()} {path}", name, model))
    return found


BODY_ID_CASES = [pytest.param(op, name, model, id=f"{op} {name}") for op, name, model in _body_id_fields()]


def _tenant_rows(organization: Organization) -> dict[str, int]:
    """How many rows of every model with an `organization` field belong to it."""
    from django.apps import apps

    return {
        m._meta.label: m._default_manager.filter(organization=organization).count()
        for m in apps.get_models()
        if any(f.name == "organization" and f.is_relation for f in m._meta.concrete_fields)
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("operation", "field", "related"), BODY_ID_CASES)
def test_another_organisations_id_in_a_body_answers_as_an_id_that_exists_nowhere(
    operation, field, related, org, other_org, callers
):
    """`{"organization": <another organisation>}` in a body must be told apart from an id of
    no row by nothing (status, error code, field), and must never act on that row."""
    from pricing.tests.factories import ProductFactory

    if operation not in BODY_ID_CASES_BODIES:
        pytest.fail(f"{operation} takes `{field}` in its body: add a body to BODY_ID_CASES_BODIES")
    method, path = operation.split(" ", 1)
    if "{" in path:
        pytest.fail(f"{operation}: the body walk does not fill path parameters yet; teach it")
    foreign = other_org if related is Organization else make_for(related, other_org)
    product = ProductFactory()
    body = {k: (product.code if v == "{product}" else v) for k, v in BODY_ID_CASES_BODIES[operation].items()}
    rows_before = _tenant_rows(other_org)
    for caller_name, client in callers.items():
        send = getattr(client, method.lower())
        answers = {}
        for label, value in (("nowhere", NO_SUCH_ID), ("theirs", foreign.pk)):
            response = send(path, {**body, field: value}, format="json")
            status, payload = _answer(response)
            error = payload.get("error", {}) if isinstance(payload, dict) else {}
            answers[label] = (status, error.get("code"), sorted(error.get("fields") or {}))
        assert answers["theirs"] == answers["nowhere"], (
            f"{operation} with {field}=<{other_org}'s {related.__name__}> by an {caller_name} answered "
            f"{answers['theirs']}, an id of no row {answers['nowhere']}"
        )
        assert answers["theirs"][0] >= 400, f"{operation} by an {caller_name} accepted another organisation's id"
    assert _tenant_rows(other_org) == rows_before, f"{operation} wrote rows of another organisation"


def test_the_body_walk_finds_the_body_ids_that_exist_today():
    assert {("POST /api/v1/credits/topups", "organization"), ("POST /api/v1/quotes", "organization")} <= {
        (op, name) for op, name, _model in _body_id_fields()
    }
