"""The URL conf as a list of routes, for tests that must cover every route: tenant
isolation (test_tenant_isolation.py) and the permission matrix
(test_permission_matrix.py). A route added later is found here without anyone editing
a test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.converters import IntConverter

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


def walk(resolver: URLResolver, prefix: str = "", namespace: str = "", kwargs=(), int_kwargs=frozenset()) -> Iterator[Route]:
    for entry in resolver.url_patterns:
        pattern = entry.pattern
        names = tuple(getattr(pattern, "converters", {})) or tuple(pattern.regex.groupindex)
        ints = frozenset(k for k, c in getattr(pattern, "converters", {}).items() if isinstance(c, IntConverter))
        if isinstance(entry, URLResolver):
            ns = f"{namespace}:{entry.namespace}" if namespace and entry.namespace else (entry.namespace or namespace)
            yield from walk(entry, prefix + str(pattern), ns, kwargs + names, int_kwargs | ints)
        elif isinstance(entry, URLPattern) and entry.name:
            name = f"{namespace}:{entry.name}" if namespace else entry.name
            yield Route(name, prefix + str(pattern), entry.callback, kwargs + names, int_kwargs | ints)


ALL_ROUTES = list(walk(get_resolver()))


def is_api(route: Route) -> bool:
    return route.pattern.lstrip("^").startswith(API_PREFIX) and hasattr(route.callback, "cls")


def exempt(route: Route) -> bool:
    target = getattr(route.callback, "cls", route.callback)
    return bool(getattr(target, "tenant_isolation_exempt", ""))


def api_model(route: Route) -> type[models.Model]:
    queryset = getattr(route.callback.cls, "queryset", None)
    if queryset is None:
        pytest.fail(
            f"{route}: {route.callback.cls.__name__} declares no `queryset`, so the route tests cannot tell "
            f"which model it serves. Declare one (e.g. `queryset = Model.objects.none()` when get_queryset "
            f"builds the rows)."
        )
    return queryset.model


def lookup(view_class) -> tuple[str, str]:
    field_name = getattr(view_class, "lookup_field", "pk") or "pk"
    return getattr(view_class, "lookup_url_kwarg", None) or field_name, field_name


def kwarg_value(route: Route, name: str, obj: models.Model, view_class=None):
    """The URL value naming `obj` (the lookup kwarg) or its parent (`<field>_pk` / `<field>_id`)."""
    if view_class is not None:
        url_kwarg, field_name = lookup(view_class)
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


def required_scope(view_class, method: str, action: str | None) -> str | None:
    required = getattr(view_class, "required_scopes", None) or {}
    return (required.get(action) if action else None) or required.get(method.upper())


def api_methods(route: Route) -> list[tuple[str, str | None]]:
    cls = route.callback.cls
    actions = getattr(route.callback, "actions", None)
    if actions:
        return [(m, a) for m, a in actions.items() if m in cls.http_method_names and m not in ("head", "options")]
    return [(m, None) for m in cls.http_method_names if m not in ("head", "options", "trace") and hasattr(cls, m)]
