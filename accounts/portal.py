"""Building blocks for portal pages: the access decorator, navigation and dashboard cards."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import models
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from accounts.scopes import ROLE_SCOPES


def portal_view(scope: str | None = None, *, model: type[models.Model] | None = None) -> Callable:
    """A portal page: signed in, acting through a membership, holding `scope`.

    Pages fetch objects with `organization=request.membership.organization`, so another
    organisation's id is a 404. A page whose URL carries an object's id names that
    object's `model`: the tenant-isolation test makes one for another organisation
    (through accounts.tests.tenancy) and requires the page to answer 404."""

    def decorator(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            membership = request.membership
            if not membership:
                return render(request, "portal/no_organization.html", status=403)
            if scope and scope not in ROLE_SCOPES[membership.role]:
                raise PermissionDenied(f"Your role ({membership.get_role_display()}) does not allow this.")
            return view(request, *args, **kwargs)

        wrapper.portal_scope = scope
        wrapper.portal_model = model
        return wrapper

    return decorator


def navigation(request) -> list[dict]:
    """PORTAL_NAV entries the current role may open. An entry whose page is not
    installed (its URL does not reverse) is left out."""
    membership = getattr(request, "membership", None)
    scopes = ROLE_SCOPES.get(membership.role, frozenset()) if membership else frozenset()
    items = []
    for label, url_name, scope, icon in settings.PORTAL_NAV:
        if scope and scope not in scopes:
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        active = request.path == url if url == "/" else request.path.startswith(url)
        items.append({"label": label, "url": url, "active": active, "icon": icon})
    return items


def dashboard_cards(request, organization) -> list[dict]:
    """Each PORTAL_DASHBOARD_CARDS entry returns {"template", ...context} or None."""
    cards = []
    for path in settings.PORTAL_DASHBOARD_CARDS:
        card = import_string(path)(request, organization)
        if card:
            cards.append(card)
    return cards
