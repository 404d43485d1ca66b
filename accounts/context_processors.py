from django.conf import settings

from accounts.models import Membership
from accounts.portal import navigation
from accounts.scopes import ROLE_SCOPES


def portal(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"brand": settings.PORTAL_BRAND}
    membership = getattr(request, "membership", None)
    membership = membership if membership else None
    return {
        "brand": settings.PORTAL_BRAND,
        "membership": membership,
        "current_org": membership.organization if membership else None,
        "nav_items": lambda: navigation(request),
        "portal_scopes": ROLE_SCOPES.get(membership.role, frozenset()) if membership else frozenset(),
        "all_memberships": lambda: Membership.objects.filter(user=user, organization__is_active=True)
        .select_related("organization")
        .order_by("organization__name"),
    }
