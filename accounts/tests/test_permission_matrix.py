"""Every API operation and every page, requested by every kind of caller, answers as the
permission matrix (accounts/tests/permission_matrix.py) says: allowed, or refused (401,
403, a redirect to sign in, 405 for a method not served).

The routes come from the URL conf (accounts/tests/routes.py, shared with the
tenant-isolation test), and the API's also from its OpenAPI schema: a route without a row
in the matrix fails, and so does a row without a route. Each principal is one test, with
one set of fixtures; each request runs in a savepoint that is rolled back, so a DELETE
allowed for one row does not change what the next row finds. Bodies are empty: the
permission gate is checked before a body is read, so an allowed write answers 400 and a
refused one 403. (The owner rules, which depend on the body, are test_grants.py.)
"""

from __future__ import annotations

import copy
import logging
import re

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client
from django.urls import resolve, reverse
from rest_framework.test import APIClient

from accounts import services
from accounts.models import Membership
from accounts.scopes import ORGANIZATION_SCOPES, PLATFORM_SCOPES, ROLE_SCOPES
from accounts.tenancy import membership_caller
from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory, make_api_key
from accounts.tests.permission_matrix import (
    API,
    EXPECTED_ROLE_SCOPES,
    NO_ROW,
    PLATFORM_ONLY,
    PRINCIPALS,
    WEB,
    WEB_PRINCIPALS,
    Principal,
    allowed,
)
from accounts.tests.routes import ALL_ROUTES, UNSAFE_METHODS, api_methods, api_model, is_api, kwarg_value
from accounts.tests.tenancy import load_tenant_factories, make_for

load_tenant_factories()

API_ROUTES = [r for r in ALL_ROUTES if is_api(r)]
WEB_ROUTES = [r for r in ALL_ROUTES if not is_api(r) and not r.name.startswith("admin:")]
WEB_METHODS = ("GET", "POST")
# A URL argument no object stands behind (models without a tenancy factory: the public
# price book). The gate answers before the lookup, so a refusal is still a 403 and an
# allowed call a 404.
NO_SUCH_ID = 2**31 - 1


def _api_operations() -> dict[tuple[str, str], object]:
    return {(r.name, method.upper()): r for r in API_ROUTES for method, _action in api_methods(r)}


def _web_operations() -> dict[tuple[str, str], object]:
    return {(r.name, method): r for r in WEB_ROUTES for method in WEB_METHODS}


# --- The matrix covers every route, and only routes that exist ----------------------------------


def _rows_check(table: dict, operations: dict, table_name: str) -> list[str]:
    missing = sorted(set(operations) - set(table))
    stale = sorted(set(table) - set(operations))
    problems = [f"{name} {method} ({operations[(name, method)].pattern}) has no row in {table_name}: {NO_ROW}"
                for name, method in missing]
    problems += [f"{table_name} has a row for {name} {method}, which is not a route any more" for name, method in stale]
    return problems


def test_every_api_operation_has_a_row():
    problems = _rows_check(API, _api_operations(), "permission_matrix.API")
    assert not problems, "\n".join(problems)


def test_every_page_has_a_row():
    problems = _rows_check(WEB, _web_operations(), "permission_matrix.WEB")
    assert not problems, "\n".join(problems)


def test_the_openapi_schema_has_no_operation_the_matrix_lacks():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    seen = set()
    for path, operations in schema["paths"].items():
        url_name = resolve(re.sub(r"\{[^}]+\}", "1", path)).url_name
        for method in operations:
            if method.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                seen.add((url_name, method.upper()))
    assert seen - set(API) == set(), "operations in the OpenAPI schema without a row in permission_matrix.API"
    assert len(seen) == len(API)


def test_the_matrix_roles_are_the_roles_of_accounts_scopes():
    """The matrix writes its expectations out; this says which side changed."""
    assert {role: frozenset(scopes) for role, scopes in ROLE_SCOPES.items()} == EXPECTED_ROLE_SCOPES
    assert PLATFORM_SCOPES - ORGANIZATION_SCOPES == PLATFORM_ONLY


# --- The principals ---------------------------------------------------------------------------------


def _bearer(raw: str) -> APIClient:
    # Noting the key's first use now, outside any savepoint, spares every request the write.
    services.api_key_authenticate(raw)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _person(principal: Principal, org):
    if principal.staff_perm:
        user = UserFactory(is_staff=True)
        app, _, codename = principal.staff_perm.rpartition(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app or "accounts",
                                                         codename=codename))
        return user
    if principal.role is None:
        return UserFactory()
    return Membership.objects.create(organization=org, user=UserFactory(), role=principal.role).user


def _organisation_key(principal: Principal, org) -> str:
    if principal.role is None:  # made by the platform
        return make_api_key(org, principal.key_scopes, name="matrix")[1]
    maker = Membership.objects.create(organization=org, user=UserFactory(), role=principal.role)
    _key, raw = services.api_key_create(name="matrix", scopes=sorted(principal.key_scopes), organization=org,
                                        by=membership_caller(maker))
    if principal.maker_now == "left":
        maker.delete()
    elif principal.maker_now:
        Membership.objects.filter(pk=maker.pk).update(role=principal.maker_now)
    return raw


def client_for(principal: Principal, org, client_class=APIClient):
    if principal.kind == "anonymous":
        return client_class()
    if principal.kind == "session":
        client = client_class()
        client.force_login(_person(principal, org))
        return client
    if principal.kind == "key":
        return _bearer(_organisation_key(principal, org))
    if principal.kind == "platform key":
        return _bearer(make_api_key(None, principal.key_scopes, name="matrix")[1])
    raise ValueError(principal.kind)


# Bodies for the few rows where an empty one is refused for its own sake.
BODIES = {
    ("portal:switch_organization", "POST"): lambda org: {"organization": org.pk},
}
_SCHEMA: dict = {}


def _route_model(route):
    if is_api(route):
        return api_model(route) if route.kwargs else None
    return getattr(route.callback, "portal_model", None)


def _url(route, objects: dict) -> str:
    if not route.kwargs:
        return reverse(route.name)
    obj = objects.get(_route_model(route))
    view_class = route.callback.cls if is_api(route) else None
    values = {}
    for name in route.kwargs:
        if obj is None:
            values[name] = NO_SUCH_ID if name in route.int_kwargs or is_api(route) else "x"
        else:
            values[name] = kwarg_value(route, name, obj, view_class)
    return reverse(route.name, kwargs=values)


@pytest.fixture(scope="module")
def shared_world(django_db_setup, django_db_blocker):
    """Made once for every principal, in a transaction rolled back after the last: the
    organisation they act in, a member of each role (so an owner is never the last), one
    object of each model a route's URL names (None for models without a tenancy factory),
    and the URL of every route."""
    with django_db_blocker.unblock(), transaction.atomic():
        org = OrganizationFactory()
        for role in ROLE_SCOPES:
            MembershipFactory(organization=org, role=role)
        objects = {}
        for route in API_ROUTES + WEB_ROUTES:
            model = _route_model(route)
            if model is not None and model not in objects:
                try:
                    objects[model] = make_for(model, org)
                except LookupError:
                    objects[model] = None
        urls = {route.name: _url(route, objects) for route in API_ROUTES + WEB_ROUTES}
        # What a GET makes on first use (an invoice's PDF) is made here once, not again for
        # each principal (each request's savepoint would throw it away).
        owner = APIClient()
        owner.force_login(Membership.objects.filter(organization=org, role="owner").first().user)
        for (name, method) in API:
            if method == "GET":
                owner.get(urls[name])
        yield org, urls
        transaction.set_rollback(True)


@pytest.fixture
def world(shared_world, db, settings, monkeypatch):
    """The shared world, with payment providers on a closed local port (a page that calls
    one fails at once instead of reaching the internet) and the OpenAPI schema generated
    once, not on every request for /api/schema/."""
    from drf_spectacular.generators import SchemaGenerator

    settings.STRIPE_API_BASE = settings.PAYPAL_API_BASE = "http://127.0.0.1:9"
    settings.PAYMENTS_PROVIDER_MAX_RETRIES = 0
    generate = SchemaGenerator.get_schema

    def get_schema_once(self, request=None, public=False):
        if public not in _SCHEMA:
            _SCHEMA[public] = generate(self, request=request, public=public)
        return _SCHEMA[public]

    monkeypatch.setattr(SchemaGenerator, "get_schema", get_schema_once)
    # Every refusal is logged as a warning; hundreds of them are only noise here.
    monkeypatch.setattr(logging.getLogger("django.request"), "level", logging.ERROR)
    return shared_world


def _refused(response) -> bool:
    if response.status_code in (401, 403, 405):
        return True
    # login_required sends the anonymous to sign in, with where they were going.
    location = response.get("Location", "") if response.status_code == 302 else ""
    return location.startswith(reverse("login")) and "next=" in location


def _request(client, method: str, url: str, api: bool, body: dict):
    """A write runs in a savepoint rolled back after it, so the world is the same for the
    next row; the client's cookies too (signing out, switching organisation)."""
    if method.lower() not in UNSAFE_METHODS:
        return client.get(url)
    cookies = copy.deepcopy(client.cookies)
    with transaction.atomic():
        response = getattr(client, method.lower())(url, body, **({"format": "json"} if api else {}))
        transaction.set_rollback(True)
    client.cookies = cookies
    return response


def _check(who: str, table: dict, client, world, api: bool) -> list[str]:
    org, urls = world
    principal = PRINCIPALS[who]
    wrong = []
    for (name, method), rule in sorted(table.items()):
        url = urls[name]
        expected = allowed(principal, rule, web=not api)
        try:
            body = BODIES[(name, method)](org) if (name, method) in BODIES else {}
            response = _request(client, method, url, api, body)
        except Exception as exc:  # noqa: BLE001 - a 500 is a wrong cell too, with the reason
            wrong.append(f"{method} {url} [{name}: {rule}] raised {exc!r}")
            continue
        if _refused(response) == expected:
            verdict = "allowed" if expected else "refused"
            wrong.append(f"{method} {url} [{name}: {rule}] should be {verdict}, answered {response.status_code}: "
                         f"{response.content[:160]!r}")
    return wrong


@pytest.mark.parametrize("who", PRINCIPALS)
def test_the_api_answers_as_the_matrix_says(who, world):
    client = client_for(PRINCIPALS[who], world[0])
    wrong = _check(who, API, client, world, api=True)
    assert not wrong, f"{who}: {len(wrong)} of {len(API)} operations differ from the matrix:\n" + "\n".join(wrong)


@pytest.mark.parametrize("who", WEB_PRINCIPALS)
def test_the_pages_answer_as_the_matrix_says(who, world):
    client = client_for(PRINCIPALS[who], world[0], client_class=Client)
    wrong = _check(who, WEB, client, world, api=False)
    assert not wrong, f"{who}: {len(wrong)} of {len(WEB)} page actions differ from the matrix:\n" + "\n".join(wrong)
