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

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter
from rest_framework.test import APIClient

from accounts.models import AuditLog, Organization
from accounts.scopes import ROLE_SCOPES, Role
from accounts.tests.factories import make_api_key
from accounts.tests.tenancy import load_tenant_factories, make_for

load_tenant_factories()

API_PREFIX = "api/v1/"
UNSAFE_METHODS = ("post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    name: str  # namespaced URL name, for reverse()
    pattern: str  # as written in the URL conf, for messages
    callback: Callable
    kwargs: tuple[str, ...]
    int_kwargs: frozenset[str] = field(default_factory=frozenset)

    def __str__(self) -> str:
        return f"{self.name} ({self.pattern})"


def _walk(resolver: URLResolver, prefix: str = "", namespace: str = "", kwargs=(), int_kwargs=frozenset()) -> Iterator[Route]:
    for entry in resolver.url_patterns:
        pattern = entry.pattern
        names = tuple(getattr(pattern, "converters", {})) or tuple(pattern.regex.groupindex)
        ints = frozenset(k for k, c in getattr(pattern, "converters", {}).items() if isinstance(c, IntConverter))
        if isinstance(entry, URLResolver):
            ns = f"{namespace}:{entry.namespace}" if namespace and entry.namespace else (entry.namespace or namespace)
            yield from _walk(entry, prefix + str(pattern), ns, kwargs + names, int_kwargs | ints)
        elif isinstance(entry, URLPattern) and entry.name:
            name = f"{namespace}:{entry.name}" if namespace else entry.name
            yield Route(name, prefix + str(pattern), entry.callback, kwargs + names, int_kwargs | ints)


ALL_ROUTES = list(_walk(get_resolver()))


def _is_api(route: Route) -> bool:
    return route.pattern.lstrip("^").startswith(API_PREFIX) and hasattr(route.callback, "cls")


def _exempt(route: Route) -> bool:
    target = getattr(route.callback, "cls", route.callback)
    return bool(getattr(target, "tenant_isolation_exempt", ""))


API_ID_ROUTES = [r for r in ALL_ROUTES if _is_api(r) and r.kwargs and not _exempt(r)]
API_LIST_ROUTES = [
    r for r in ALL_ROUTES
    if _is_api(r) and not r.kwargs and getattr(r.callback, "actions", {}).get("get") == "list" and not _exempt(r)
]
PORTAL_ID_ROUTES = [
    r for r in ALL_ROUTES
    if not _is_api(r) and r.int_kwargs and not r.name.startswith("admin:") and not _exempt(r)
]


def _api_model(route: Route) -> type[models.Model]:
    queryset = getattr(route.callback.cls, "queryset", None)
    if queryset is None:
        pytest.fail(
            f"{route}: {route.callback.cls.__name__} declares no `queryset`, so the isolation test cannot tell "
            f"which model it serves. Declare one (e.g. `queryset = Model.objects.none()` when get_queryset "
            f"builds the rows)."
        )
    return queryset.model


def _lookup(view_class) -> tuple[str, str]:
    field_name = getattr(view_class, "lookup_field", "pk") or "pk"
    return getattr(view_class, "lookup_url_kwarg", None) or field_name, field_name


def _kwarg_value(route: Route, name: str, obj: models.Model, view_class=None):
    """The URL value naming `obj` (the lookup kwarg) or its parent (`<field>_pk` / `<field>_id`)."""
    if view_class is not None:
        url_kwarg, field_name = _lookup(view_class)
        if name == url_kwarg:
            return getattr(obj, field_name)
    elif name == "pk":
        return obj.pk
    base = name.rsplit("_", 1)[0] if name.endswith(("_pk", "_id")) else name
    if hasattr(obj, f"{base}_id"):
        return getattr(obj, f"{base}_id")
    if base == obj._meta.model_name:
        return obj.pk
    pytest.fail(
        f"{route}: cannot tell what the URL argument {name!r} names on {obj._meta.label}. Name a parent "
        f"argument after the model's field (e.g. organization_pk for .organization)."
    )


def _required_scope(view_class, method: str, action: str | None) -> str | None:
    required = getattr(view_class, "required_scopes", None) or {}
    return (required.get(action) if action else None) or required.get(method.upper())


def _api_methods(route: Route) -> list[tuple[str, str | None]]:
    cls = route.callback.cls
    actions = getattr(route.callback, "actions", None)
    if actions:
        return [(m, a) for m, a in actions.items() if m in cls.http_method_names and m not in ("head", "options")]
    return [(m, None) for m in cls.http_method_names if m not in ("head", "options", "trace") and hasattr(cls, m)]


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
    model = _api_model(route)
    view_class = route.callback.cls
    foreign = make_for(model, other_org)
    own = make_for(model, org)
    audit_before = _foreign_writes(other_org)
    lookup_kwarg = _lookup(view_class)[0]

    variants = [{k: _kwarg_value(route, k, foreign, view_class) for k in route.kwargs}]
    if lookup_kwarg in route.kwargs and len(route.kwargs) > 1:
        # The caller's own parent with the other organisation's object in it.
        variants.append({
            k: _kwarg_value(route, k, foreign if k == lookup_kwarg else own, view_class) for k in route.kwargs
        })

    for caller_name, client in callers.items():
        for kwargs in variants:
            url = reverse(route.name, kwargs=kwargs)
            for method, action in _api_methods(route):
                scope = _required_scope(view_class, method, action)
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
    model = _api_model(route)
    view_class = route.callback.cls
    _url_kwarg, field_name = _lookup(view_class)
    response_field = "id" if field_name == "pk" else field_name
    foreign, own = make_for(model, other_org), make_for(model, org)
    url = reverse(route.name)
    scope = _required_scope(view_class, "get", "list")
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
    url = reverse(route.name, kwargs={k: _kwarg_value(route, k, foreign) for k in route.kwargs})
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
