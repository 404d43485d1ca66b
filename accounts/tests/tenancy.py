"""Registry of factories for the tenant-isolation test.

Each app registers, in `<app>/tests/factories.py`, how to make a row of each model an
organisation-scoped detail route serves:

    @tenant_factory(Resource)
    def make_resource(organization):
        return ResourceFactory(organization=organization)

The isolation test walks every API route with an id in it, makes the route's object for
another organisation through this registry, and requires a 404.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import models

TENANT_FACTORIES: dict[type[models.Model], Callable] = {}


def tenant_factory(model: type[models.Model]) -> Callable:
    def register(fn: Callable) -> Callable:
        TENANT_FACTORIES[model] = fn
        return fn

    return register
