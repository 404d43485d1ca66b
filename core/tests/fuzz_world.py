"""A world for the API fuzz test: one organisation with a row behind every id the
API takes, built through each app's registered tenancy factory
(accounts/tests/tenancy.py), so a new detail route gets a real id without anyone
editing this file. Invoices come in every state (draft, open, paid), so the generated
bodies reach the state checks behind the lookup instead of stopping at a 404.
"""

from __future__ import annotations

import random
from typing import Any

from django.urls import resolve
from django.urls.exceptions import Resolver404

from accounts.scopes import Role
from accounts.tests.routes import ALL_ROUTES, api_model, is_api, kwarg_value
from accounts.tests.tenancy import load_tenant_factories, make_for


def build_world(org: Any, make_member: Any) -> dict[str, list[dict[str, Any]]]:
    """URL name -> candidate path kwargs, each naming a row `org` may see."""
    from invoices.models import Invoice
    from invoices.services.payments_received import invoice_record_payment
    from invoices.tests.factories import make_invoice
    from payments.tests.factories import make_refund

    load_tenant_factories()
    make_member(org, Role.OWNER)
    make_member(org, Role.VIEWER)
    extra: dict[type, list[Any]] = {
        # Draft, open and paid invoices: finalize, void and credit notes each meet every state.
        Invoice: [make_invoice(org, finalize=False, month=7), make_invoice(org, month=8)],
    }
    paid = make_invoice(org, month=6)
    invoice_record_payment(invoice=paid, amount=paid.amount_due, reference=f"fuzz-world-{paid.pk}")
    paid.refresh_from_db()
    extra[Invoice].append(paid)
    make_refund(org)  # a payment with a refund beside it

    world: dict[str, list[dict[str, Any]]] = {}
    for route in ALL_ROUTES:
        if not is_api(route) or not route.kwargs:
            continue
        model = api_model(route)
        view_class = route.callback.cls
        objects = extra.get(model)
        if objects is None:
            try:
                objects = extra[model] = [make_for(model, org)]
            except LookupError:
                objects = extra[model] = _public_rows(model)
        world[route.name] = [
            {k: kwarg_value(route, k, obj, view_class) for k in route.kwargs} for obj in objects
        ]
    return world


def _public_rows(model: type) -> list[Any]:
    """Rows of the public price book, which has no tenancy factory (every caller may read it)."""
    from datetime import UTC, datetime

    from pricing.models import Price, Product
    from pricing.tests.factories import ProductFactory
    from usage.tests.factories import add_price

    if model is Product:
        return [ProductFactory()]
    if model is Price:
        return [add_price(ProductFactory(), "0.0100", valid_from=datetime(2026, 1, 1, tzinfo=UTC))]
    return []


def point_at_real_rows(case: Any, world: dict[str, list[dict[str, Any]]], rng: random.Random) -> None:
    """Give the case's path parameters a real row of the caller: the operation's path is
    resolved to its URL name with placeholder values, and one candidate is picked."""
    params = case.path_parameters
    if not params:
        return
    probe = case.operation.path
    for name in params:
        probe = probe.replace(f"{{{name}}}", "1")
    try:
        match = resolve(probe)
    except Resolver404:
        return
    candidates = world.get(match.url_name or "")
    if candidates:
        params.update(rng.choice(candidates))
