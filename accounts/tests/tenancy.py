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

import importlib
import importlib.util
from collections.abc import Callable

from django.db import models

TENANT_FACTORIES: dict[type[models.Model], Callable] = {}


def tenant_factory(model: type[models.Model]) -> Callable:
    def register(fn: Callable) -> Callable:
        TENANT_FACTORIES[model] = fn
        return fn

    return register


def load_tenant_factories() -> dict[type[models.Model], Callable]:
    """Import every installed app's `tests/factories.py`, so their registrations run."""
    from django.apps import apps

    for config in apps.get_app_configs():
        name = f"{config.name}.tests.factories"
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            continue
        if spec is not None:
            importlib.import_module(name)
    return TENANT_FACTORIES


def make_for(model: type[models.Model], organization) -> models.Model:
    """A row of `model` belonging to `organization`, made by the registered factory."""
    factory = TENANT_FACTORIES.get(model)
    if factory is None:
        raise LookupError(
            f"No tenancy factory for {model._meta.label}. Register one in "
            f"{model._meta.app_label}/tests/factories.py with "
            f"@tenant_factory({model.__name__}) def make(organization): ... so the isolation "
            f"test can prove another organisation cannot reach it."
        )
    obj = factory(organization)
    if obj is None or not isinstance(obj, model):
        raise TypeError(f"The tenancy factory for {model._meta.label} returned {obj!r}, not a {model.__name__}.")
    return obj
